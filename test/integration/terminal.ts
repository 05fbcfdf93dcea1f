/*
 * A real terminal for driving the interactive client as a person would: tmux runs the program in
 * a pane, send-keys types, capture-pane reads the screen. Each Terminal has its own tmux server
 * (its own socket), so tests never see each other's panes. Every wait is bounded.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export class Terminal {
  private readonly socket: string;
  private constructor(socket: string) {
    this.socket = socket;
  }

  /** Starts `command` (argv) in a new 200x50 pane, with env set for it alone. */
  static async start(command: string[], env: Record<string, string>): Promise<Terminal> {
    const socket = `failback-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const terminal = new Terminal(socket);
    const exports = Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`).join(" ");
    const line = `env ${exports} ${command.map(shellQuote).join(" ")}; echo "[exit $?]"; sleep 600`;
    await run("tmux", ["-L", socket, "-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "50", "-s", "t", line]);
    return terminal;
  }

  async screen(): Promise<string> {
    const { stdout } = await run("tmux", ["-L", this.socket, "capture-pane", "-p", "-J", "-S", "-2000", "-t", "t"]);
    return stdout;
  }

  /** Types text and presses Enter. */
  async type(text: string): Promise<void> {
    if (text) await run("tmux", ["-L", this.socket, "send-keys", "-t", "t", "-l", text]);
    await run("tmux", ["-L", this.socket, "send-keys", "-t", "t", "Enter"]);
  }

  async key(name: string): Promise<void> {
    await run("tmux", ["-L", this.socket, "send-keys", "-t", "t", name]);
  }

  /** Waits until the screen matches; returns the screen. Fails with the screen when it does not. */
  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      last = await this.screen();
      if (pattern.test(last)) return last;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`screen did not show ${pattern} within ${timeoutMs} ms; it shows:\n${last}`);
  }

  async close(): Promise<void> {
    await run("tmux", ["-L", this.socket, "kill-server"]).catch(() => undefined);
  }
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
