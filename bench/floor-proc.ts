/**
 * The bench's floor process (see bench/floor.ts): does the unavoidable work of figure 1 or 3 once,
 * synchronously, and prints one JSON line with each step's bytes and CPU seconds. A process of its
 * own so that its CPU time holds this work and nothing of the bench's. Argument: one JSON object,
 * {"kind":"full","source":...,"scratch":...} or {"kind":"equal","source":...,"target":...}.
 */
import { equalPass, fullPass, type FloorArgs } from "./floor.js";

try {
  const args = JSON.parse(process.argv[2] ?? "{}") as FloorArgs;
  const r = args.kind === "full" ? fullPass(args.source, args.scratch) : equalPass(args.source, args.target);
  process.stdout.write(`${JSON.stringify(r)}\n`);
} catch (e) {
  process.stderr.write(`floor-proc: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
