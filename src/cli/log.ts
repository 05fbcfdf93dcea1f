/*
 * The program's log: timestamped lines to --log-file, mirrored on stderr with --log-console.
 * Every line passes through the redactor first, so a secret that slipped into an error message
 * from a library still never reaches a file or the screen.
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

export interface Log {
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
  /** Registers a value that must never be printed (secret key, session token, pairing code). */
  addSecret(value: string | undefined): void;
  /** Masks every registered secret in text. */
  redact(text: string): string;
}

export interface LogOptions {
  file?: string;
  console: boolean;
  /** Where --log-console lines go; stderr keeps stdout clean for --json. */
  consoleWrite: (line: string) => void;
  now?: () => Date;
}

export function createLog(options: LogOptions): Log {
  const secrets = new Set<string>();
  const now = options.now ?? (() => new Date());
  if (options.file) mkdirSync(dirname(options.file), { recursive: true });

  const redact = (text: string): string => {
    let out = text;
    // Longest first, so a secret containing another is masked whole.
    for (const secret of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(secret).join("****");
    return out;
  };

  const write = (level: string, line: string) => {
    const text = `${now().toISOString()} ${level} ${redact(line)}`;
    if (options.file) appendFileSync(options.file, `${text}\n`, { mode: 0o600 });
    if (options.console) options.consoleWrite(`${text}\n`);
  };

  return {
    info: (line) => write("INFO ", line),
    warn: (line) => write("WARN ", line),
    error: (line) => write("ERROR", line),
    addSecret(value) {
      // Very short values would mask ordinary words; real secrets are long.
      if (value && value.length >= 4) secrets.add(value);
    },
    redact,
  };
}
