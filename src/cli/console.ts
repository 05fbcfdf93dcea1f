/*
 * What the person (or the automation) sees. Human text goes to stdout, except with --json, where
 * stdout carries only JSON events (one a line, docs/events.md) and human text moves to stderr so a
 * script can pipe stdout straight into a JSON parser. Warnings go to stderr in every mode.
 *
 * On a terminal, progress.ts redraws its bars in place: each drawing first moves the cursor up over
 * the previous one. A warning written below the bars would be overwritten by the next drawing, so
 * the console remembers the last drawing, and a warning clears it, takes its place, and draws it
 * again beneath; the next drawing then moves up over the bars, not over the warning.
 *
 * The reader of standard output may go away while replication runs (`failback-client --json |
 * head -1`, a closed ssh session). Node ignores SIGPIPE, so each later write fails with EPIPE as
 * an 'error' event on the stream, and an 'error' nobody listens to ends the process
 * (https://nodejs.org/api/process.html#signal-events, https://nodejs.org/api/events.html#error-events).
 * `keepGoingWhenClosed` listens; a stream that failed is written no more (writeTo), and the run goes
 * on: the log file still records everything.
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

/** Output streams that failed (their reader went away): nothing more is written to them. */
const closedStreams = new WeakSet<Writable>();

/** Turns a failing output stream (EPIPE, EIO) into `onClosed` once, instead of the end of the run. */
export function keepGoingWhenClosed(stream: Writable, onClosed: (error: Error) => void): void {
  stream.on("error", (error: Error) => {
    if (closedStreams.has(stream)) return;
    closedStreams.add(stream);
    onClosed(error);
  });
}

/** Writes text unless the stream's reader went away; `done` runs either way. */
export function writeTo(stream: Writable, text: string, done?: () => void): void {
  if (closedStreams.has(stream)) {
    if (done) process.nextTick(done);
    return;
  }
  stream.write(text, done && (() => done()));
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
    writeTo(this.target, text);
    done();
  }

  /** Writes `write()`'s output where the drawing was, then the drawing again beneath it. */
  above(write: () => void): void {
    const lines = this.drawing.split("\n").length - 1;
    writeTo(this.target, `\x1b[${lines}A\r\x1b[J`);
    write();
    writeTo(this.target, this.drawing);
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
    writeTo(options.stdout, `${options.redact(text)}\n`);
  };
  return {
    json: options.json,
    isTty: base.isTTY === true,
    humanStream,
    say(line) {
      const text = `${options.redact(line)}\n`;
      // A line said while the bars are drawn ("Failback launched: final sync...") goes above them,
      // as a warning does, or the next drawing would move up over it.
      if (terminal?.drawing) terminal.above(() => writeTo(base, text));
      else writeTo(humanStream, text);
    },
    warn(line) {
      const write = () => writeTo(options.stderr, `Warning: ${options.redact(line)}\n`);
      // Only where the bars and the warning share one screen does the drawing have to move.
      if (terminal?.drawing && options.stderr.isTTY === true && !options.json) terminal.above(write);
      else write();
      event("warning", { message: line });
    },
    event,
  };
}
