/*
 * Warnings reach the person on stderr in every mode; on a terminal they survive the progress
 * bars' redrawing (checked on a small model of a terminal that stdout and stderr share).
 */
import { Writable } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createConsole, type ConsoleOut } from "../../src/cli/console.js";
import { createLog } from "../../src/cli/log.js";
import { createProgress, type ProgressView } from "../../src/cli/progress.js";

const MiB = 2 ** 20;
const progress = (volume: string, hashedBytes: number) => ({
  type: "progress", volume, phase: "continuous", totalBytes: 100 * MiB, hashedBytes, sentBytes: 0, skippedEqualBytes: hashedBytes, skippedZeroBytes: 0, bytesPerSecond: 10 * MiB, etaSeconds: 1,
});

/** Rows of text as a terminal shows them: cursor up, carriage return, clear line, clear below. */
class Screen {
  rows: string[] = [""];
  private row = 0;
  private col = 0;

  write(text: string): void {
    // Tokens: an escape sequence, a control character, or a run of printable text.
    // eslint-disable-next-line no-control-regex
    for (const [token] of text.matchAll(/\x1b\[(\d*)([AJK])|\r|\n|[^\x1b\r\n]+/g)) {
      if (token === "\r") this.col = 0;
      else if (token === "\n") {
        this.row += 1;
        this.col = 0;
      } else if (token.startsWith("\x1b[")) {
        const kind = token.at(-1);
        if (kind === "A") this.row = Math.max(0, this.row - Number(token.slice(2, -1) || 1));
        else if (kind === "K") this.rows[this.row] = "";
        else {
          this.rows.splice(this.row + 1);
          this.rows[this.row] = (this.rows[this.row] ?? "").slice(0, this.col);
        }
      } else {
        while (this.rows.length <= this.row) this.rows.push("");
        const line = (this.rows[this.row] ?? "").padEnd(this.col);
        this.rows[this.row] = line.slice(0, this.col) + token + line.slice(this.col + token.length);
        this.col += token.length;
      }
      while (this.rows.length <= this.row) this.rows.push("");
    }
  }

  text(): string[] {
    return this.rows.filter((r) => r !== "");
  }
}

function sink(write: (text: string) => void, isTTY: boolean) {
  return Object.assign(
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        write(chunk.toString());
        done();
      },
    }),
    { isTTY, columns: 200 },
  );
}

afterEach(() => vi.useRealTimers());

describe("console warnings", () => {
  it("on a terminal, a warning stays on the screen above the progress bars as they go on redrawing", () => {
    vi.useFakeTimers();
    const screen = new Screen();
    const out = createConsole({ json: false, stdout: sink((t) => screen.write(t), true), stderr: sink((t) => screen.write(t), true), redact: (s) => s });
    const view = createProgress(out, createLog({ console: false, consoleWrite: () => undefined }), ["/dev/xvda", "/dev/xvdb"]);
    view.onEvent(progress("/dev/xvda", 10 * MiB));
    view.onEvent(progress("/dev/xvdb", 20 * MiB));
    vi.advanceTimersByTime(300);
    out.warn("cannot read the failback state");
    for (const mib of [30, 40, 50]) {
      view.onEvent(progress("/dev/xvda", mib * MiB));
      vi.advanceTimersByTime(300);
    }
    view.stop();
    const rows = screen.text();
    expect(rows).toHaveLength(4);
    expect(rows[0]).toBe("Warning: cannot read the failback state");
    expect(rows[1]).toMatch(/^\/dev\/xvda .*scanned 50\.00 MiB/);
    expect(rows[2]).toMatch(/^\/dev\/xvdb .*scanned 20\.00 MiB/);
    expect(rows[3]).toMatch(/^total /);
  });

  it.each([
    ["a line the flow says (the launch was seen)", (out: ConsoleOut) => out.say("Failback launched: final sync, verification and flush..."), /^Failback launched: final sync/],
    ["the progress view's own line (a reconnection)", (_: ConsoleOut, view: ProgressView) => view.onEvent({ type: "reconnecting", attempt: 1, delayMs: 500, reason: "the connection to the agent was lost" }), /reconnect/i],
  ] as const)("on a terminal, %s stays above the bars as they go on redrawing, and the bars are drawn once", (_, say, line) => {
    vi.useFakeTimers();
    const screen = new Screen();
    const out = createConsole({ json: false, stdout: sink((t) => screen.write(t), true), stderr: sink((t) => screen.write(t), true), redact: (s) => s });
    const view = createProgress(out, createLog({ console: false, consoleWrite: () => undefined }), ["/dev/xvda"]);
    view.onEvent(progress("/dev/xvda", 10 * MiB));
    vi.advanceTimersByTime(300);
    say(out, view);
    for (const mib of [30, 40]) {
      view.onEvent(progress("/dev/xvda", mib * MiB));
      vi.advanceTimersByTime(300);
    }
    view.stop();
    const rows = screen.text();
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(line);
    expect(rows[1]).toMatch(/^\/dev\/xvda .*scanned 40\.00 MiB/);
  });

  it("without a terminal, goes to stderr and leaves stdout alone", () => {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const out = createConsole({ json: false, stdout: sink((t) => stdout.push(t), false), stderr: sink((t) => stderr.push(t), false), redact: (s) => s.replace("s3cret", "****") });
    out.warn("slow DRS, key s3cret");
    expect(stderr.join("")).toBe("Warning: slow DRS, key ****\n");
    expect(stdout).toEqual([]);
  });

  it("with --json, goes to stderr and is a warning event on stdout", () => {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const out = createConsole({ json: true, stdout: sink((t) => stdout.push(t), false), stderr: sink((t) => stderr.push(t), true), redact: (s) => s, now: () => new Date(0) });
    out.warn("slow DRS");
    expect(stderr.join("")).toBe("Warning: slow DRS\n");
    expect(stdout.map((l) => JSON.parse(l) as unknown)).toEqual([{ time: "1970-01-01T00:00:00.000Z", type: "warning", message: "slow DRS" }]);
  });
});
