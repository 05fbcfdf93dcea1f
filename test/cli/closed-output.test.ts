/*
 * The reader of the client's output may go away mid-run (`failback-client --json | head -1`, a
 * closed ssh session): the run goes on and finishes, writing no more there; the log keeps the record.
 * The built client against a DRS emulator and a real agent (test/integration/world.ts).
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseWorld, dist, FailbackWorld, MiB } from "../integration/world.js";

let fw: FailbackWorld;
beforeAll(async () => {
  fw = await FailbackWorld.start(baseWorld({ recoveryInstanceId: "i-0c105ed0c105ed001", sourceServerId: "s-0c105ed0c105ed001" }));
});
afterAll(() => fw?.stop());

describe("a closed output", () => {
  it.each([
    ["--json, standard output read up to its first line", ["--json"], ["stdout"], /standard output closed \(EPIPE\)/],
    ["standard output and error both gone", [], ["stdout", "stderr"], /standard (output|error) closed \(EPIPE\)/],
  ] as const)("%s: the failback completes, with exit 0 and no crash", async (name, flags, closed, logged) => {
    const [a, b] = await fw.blankImages(`closed-${flags.length}`, [8 * MiB, 4 * MiB]);
    const logFile = join(fw.dir, `closed-${flags.length}.log`);
    const child = spawn(process.execPath, [dist("failback-client"), ...fw.onceFlags(`/dev/xvda=${a},/dev/xvdb=${b}`, [...flags, "--log-file", logFile])], {
      env: fw.env(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    // Like `| head -1`: the reader takes the first chunk and closes its end of the pipe.
    for (const stream of closed) child[stream].once("data", () => child[stream].destroy());
    const code = await new Promise<number | null>((done) => child.once("exit", (c) => done(c)));
    expect(stderr, name).not.toMatch(/Unhandled|EPIPE|at .*\.js:\d+/);
    expect(code).toBe(0);
    expect(await fw.sameAsRecovery(0, a!)).toBe(true);
    expect(await fw.sameAsRecovery(1, b!)).toBe(true);
    const log = await readFile(logFile, "utf8");
    expect(log).toMatch(logged);
    expect(log).toMatch(/INFO .*verified/);
  });
});
