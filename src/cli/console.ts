/*
 * What the person (or the automation) sees. Human text goes to stdout, except with --json, where
 * stdout carries only JSON events (one a line, docs/events.md) and human text moves to stderr so a
 * script can pipe stdout straight into a JSON parser.
 */
import type { Writable } from "node:stream";

export interface ConsoleOut {
  readonly json: boolean;
  readonly isTty: boolean;
  /** A line for the person. */
  say(line: string): void;
  /** A machine-readable event; printed only with --json. */
  event(type: string, fields: Record<string, unknown>): void;
  /** The stream human text goes to (progress bars draw on it). */
  readonly humanStream: Writable & { isTTY?: boolean; columns?: number };
}

export function createConsole(options: {
  json: boolean;
  stdout: Writable & { isTTY?: boolean; columns?: number };
  stderr: Writable & { isTTY?: boolean; columns?: number };
  redact: (text: string) => string;
  now?: () => Date;
}): ConsoleOut {
  const humanStream = options.json ? options.stderr : options.stdout;
  const now = options.now ?? (() => new Date());
  return {
    json: options.json,
    isTty: humanStream.isTTY === true,
    humanStream,
    say(line) {
      humanStream.write(`${options.redact(line)}\n`);
    },
    event(type, fields) {
      if (!options.json) return;
      const text = JSON.stringify({ time: now().toISOString(), type, ...fields });
      options.stdout.write(`${options.redact(text)}\n`);
    },
  };
}
