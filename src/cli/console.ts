/*
 * What the person (or the automation) sees. Human text goes to stdout, except with --json, where
 * stdout carries only JSON events (one a line, docs/events.md) and human text moves to stderr so a
 * script can pipe stdout straight into a JSON parser. Warnings go to stderr in every mode.
 *
 * On a terminal, progress.ts redraws its bars in place: each drawing first moves the cursor up over
 * the previous one. A warning written below the bars would be overwritten by the next drawing, so
 * the console remembers the last drawing, and a warning clears it, takes its place, and draws it
 * again beneath; the next drawing then moves up over the bars, not over the warning.
 */
import { Writable } from "node:stream";

type HumanStream = Writable & { isTTY?: boolean; columns?: number };

export interface ConsoleOut {
  readonly json: boolean;
  readonly isTty: boolean;
  /** A line for the person. */
  say(line: string): void;
  /** A warning for the person, on stderr, and a "warning" event with --json. */
  warn(line: string): void;
  /** A machine-readable event; printed only with --json. */
  event(type: string, fields: Record<string, unknown>): void;
  /** The stream human text goes to (progress bars draw on it). */
  readonly humanStream: HumanStream;
}

/** Every drawing of progress.ts clears each line it writes with this; nothing else writes it. */
const CLEARED_LINE = "\r\x1b[2K";

/** A terminal stream that remembers the last drawing written to it (a line written after it forgets it). */
class DrawnTerminal extends Writable {
  drawing = "";

  constructor(private readonly target: HumanStream) {
    super({ decodeStrings: false });
  }

  get isTTY(): boolean {
    return true;
  }

  get columns(): number | undefined {
    return this.target.columns;
  }

  override _write(chunk: string | Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    const text = chunk.toString();
    // A drawing from its first line on: without the move up over the one before.
    const first = text.indexOf(CLEARED_LINE);
    this.drawing = first >= 0 ? text.slice(first) : "";
    // Synchronous, as the terminal's own writes are: a warning on stderr keeps its place among them.
    this.target.write(chunk);
    done();
  }

  /** Writes `write()`'s output where the drawing was, then the drawing again beneath it. */
  above(write: () => void): void {
    const lines = this.drawing.split("\n").length - 1;
    this.target.write(`\x1b[${lines}A\r\x1b[J`);
    write();
    this.target.write(this.drawing);
  }
}

export function createConsole(options: {
  json: boolean;
  stdout: HumanStream;
  stderr: HumanStream;
  redact: (text: string) => string;
  now?: () => Date;
}): ConsoleOut {
  const base = options.json ? options.stderr : options.stdout;
  const terminal = base.isTTY === true ? new DrawnTerminal(base) : undefined;
  const humanStream = terminal ?? base;
  const now = options.now ?? (() => new Date());
  const event = (type: string, fields: Record<string, unknown>) => {
    if (!options.json) return;
    const text = JSON.stringify({ time: now().toISOString(), type, ...fields });
    options.stdout.write(`${options.redact(text)}\n`);
  };
  return {
    json: options.json,
    isTty: base.isTTY === true,
    humanStream,
    say(line) {
      humanStream.write(`${options.redact(line)}\n`);
    },
    warn(line) {
      const write = () => options.stderr.write(`Warning: ${options.redact(line)}\n`);
      // Only where the bars and the warning share one screen does the drawing have to move.
      if (terminal?.drawing && options.stderr.isTTY === true && !options.json) terminal.above(write);
      else write();
      event("warning", { message: line });
    },
    event,
  };
}
