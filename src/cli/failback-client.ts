#!/usr/bin/env node
/*
 * failback-client: the program on the live ISO. Reads the settings, runs the flow, and turns what
 * happened into an exit code and, on failure, one line saying what was wrong and what to do.
 * No stack trace reaches the person; the log (--log-file) keeps the causes.
 *
 * Its launchers (bin/failback-client for npm, iso-build/overlay/usr/local/bin/failback-client on
 * the ISO; bench/ reads the former) start Node with --initial-heap-size=64: V8 sizes a fresh heap
 * for a small program, and while replication streams gigabytes through Buffers it then runs a
 * full collection every few tens of milliseconds. Node takes the flag only on its command line
 * (not NODE_OPTIONS). A 2 GiB pass onto a blank disk: Node 20, 115 -> 7 full collections and
 * 6.3 -> 4.9 CPU-s in the client (5.5 -> 4.8 s); Node 24, 86 -> 54 and about 7% faster; peak RSS
 * +0-20 MiB.
 */
import { readFileSync } from "node:fs";
import { createConsole, keepGoingWhenClosed, writeTo } from "./console.js";
import { CliError, exitCodeFor, EXIT, type ExitCode } from "./exit-codes.js";
import { runFailback } from "./failback.js";
import { runListDevices } from "./list-devices-command.js";
import { createLog, type Log } from "./log.js";
import { createPrompter } from "./prompts.js";
import { readSettings } from "./settings.js";

// The secret key may be on the command line; overwriting the process title also overwrites the
// argv area that `ps` and /proc/PID/cmdline show (libuv uv_set_process_title on Linux).
process.title = "failback-client";

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

function describeCause(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth += 1) {
    if (current instanceof Error) {
      parts.push(`${current.name}: ${current.message}`);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(" <- ");
}

async function main(): Promise<ExitCode> {
  const argv = process.argv.slice(2);
  const earlyRedact = (text: string) => text;
  let log: Log | undefined;
  let json = argv.includes("--json");
  // A reader that goes away (`| head -1`) must not end a replication half-written.
  for (const [stream, name] of [[process.stdout, "standard output"], [process.stderr, "standard error"]] as const) {
    keepGoingWhenClosed(stream, (error) => log?.warn(`${name} closed (${(error as NodeJS.ErrnoException).code ?? error.message}): nothing more is written there; the failback goes on`));
  }
  const fail = (error: unknown): ExitCode => {
    const code = exitCodeFor(error);
    const redact = log?.redact ?? earlyRedact;
    // Every cancel reads the same, whichever library saw it; a declined plan says what it was.
    const declined = error instanceof CliError && error.code === "PLAN_DECLINED";
    const message = code === EXIT.cancelled && !declined ? "cancelled; nothing more was written" : error instanceof Error ? error.message : String(error);
    const hint = code === EXIT.other && !(error instanceof Error && "code" in error) ? " (an unexpected error: the log has the details; run again with --log-file)" : "";
    writeTo(process.stderr, `failback-client: ${redact(oneLine(message))}${hint}\n`);
    if (json) {
      const errorCode = error instanceof Error && "code" in error ? String((error as { code: unknown }).code) : "UNEXPECTED";
      writeTo(process.stdout, `${redact(JSON.stringify({ time: new Date().toISOString(), type: "error", code: errorCode, exitCode: code, message: oneLine(message) }))}\n`);
    }
    log?.error(`exit ${code}: ${describeCause(error)}`);
    if (error instanceof Error && error.stack) log?.error(error.stack);
    return code;
  };

  try {
    const settings = readSettings(argv, process.env, version(), { out: (s) => writeTo(process.stdout, s), err: (s) => writeTo(process.stderr, s) });
    if (!settings) return EXIT.ok;
    json = settings.json;
    log = createLog({ file: settings.logFile, console: settings.logConsole, consoleWrite: (line) => writeTo(process.stderr, line) });
    log.addSecret(settings.secretAccessKey);
    log.addSecret(settings.sessionToken);
    log.addSecret(settings.pairingCode);
    log.addSecret(process.env.AWS_SECRET_ACCESS_KEY);
    log.addSecret(process.env.AWS_SESSION_TOKEN);
    const activeLog = log;

    if (settings.listDevices) return await runListDevices(settings, (text) => writeTo(process.stdout, text));

    const out = createConsole({ json: settings.json, stdout: process.stdout, stderr: process.stderr, redact: log.redact });
    // Without a terminal there is nobody to answer: behave as --no-prompt, and say so in the log.
    const interactive = settings.prompt && process.stdin.isTTY === true;
    if (settings.prompt && !interactive) log.info("standard input is not a terminal: nothing will be asked (as with --no-prompt)");
    const prompter = interactive ? createPrompter({ input: process.stdin, output: settings.json ? process.stderr : process.stdout }) : null;

    const stop = new AbortController();
    let signals = 0;
    const onSignal = (name: string) => {
      signals += 1;
      activeLog.warn(`${name} received${signals > 1 ? " again: exiting now" : ": stopping cleanly"}`);
      if (signals > 1) process.exit(EXIT.cancelled);
      stop.abort(new Error(name));
    };
    process.on("SIGINT", () => onSignal("SIGINT"));
    process.on("SIGTERM", () => onSignal("SIGTERM"));

    activeLog.info(`failback-client ${version()} started`);
    const code = await runFailback({ settings, env: process.env, prompter, log: activeLog, out, signal: stop.signal });
    if (code === EXIT.cancelled) return fail(Object.assign(new Error("cancelled"), { name: "AbortPromptError" }));
    return code;
  } catch (error) {
    return fail(error);
  }
}

const code = await main();
// Open sockets or timers from an aborted step must not keep a finished program alive.
writeTo(process.stdout, "", () => process.exit(code));
