#!/usr/bin/env node
/*
 * failback-drs-emulator --state FILE --listen HOST:PORT: DRS and STS on loopback for the demo and
 * the tests. Prints "listening on http://HOST:PORT" first; stops cleanly on SIGTERM or SIGINT.
 */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { parseState, startEmulator } from "../emulator/index.js";

const program = new Command("failback-drs-emulator")
  .description("A local stand-in for AWS DRS and STS (docs/emulator.md)")
  .requiredOption("--state <file>", "the state file: credentials, source servers, recovery instances, configurations")
  .option("--listen <host:port>", "where to listen (port 0 picks a free one)", "127.0.0.1:0")
  .option("--region <region>", "the region the state stands for", "us-east-1")
  .option("--log", "log each request on stderr")
  .parse();
const opts = program.opts<{ state: string; listen: string; region: string; log?: boolean }>();

try {
  const match = /^(.*):(\d+)$/.exec(opts.listen);
  if (!match) throw new Error(`--listen "${opts.listen}" is not HOST:PORT`);
  let text: string;
  try {
    text = readFileSync(opts.state, "utf8");
  } catch (error) {
    throw new Error(`cannot read --state ${opts.state}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`--state ${opts.state} is not JSON: ${(error as Error).message}`);
  }
  const emulator = await startEmulator({
    state: parseState(json, opts.region),
    host: match[1]!.replace(/^\[|\]$/g, ""),
    port: Number(match[2]),
    log: opts.log ? (line) => process.stderr.write(`${line}\n`) : undefined,
  });
  process.stdout.write(`listening on ${emulator.url}\n`);
  const stop = () => void emulator.close().then(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
} catch (error) {
  process.stderr.write(`failback-drs-emulator: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
}
