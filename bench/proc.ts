/**
 * Process plumbing for the benchmark: run a command with a deadline, wait for a TCP listener without
 * connecting to it (socat and rsync accept exactly the connection we mean to time), read a process's
 * peak memory. Every child is tracked so the bench can kill what it started on error or SIGINT.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

const live = new Set<ChildProcess>();

/** Kills every child this bench started and that is still running (by its own pid only). */
export function killAll(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  live.clear();
}

export interface Started {
  readonly child: ChildProcess;
  /** Resolves with the exit code (or the signal) once the process has ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly stdout: () => string;
  readonly stderr: () => string;
}

/** Starts a process, optionally inside a network namespace, keeping the last 1 MiB of its output. */
export function start(cmd: string, args: readonly string[], opts: { netns?: string; cwd?: string } = {}): Started {
  const [file, argv] = opts.netns === undefined ? [cmd, args] : ["ip", ["netns", "exec", opts.netns, cmd, ...args]];
  const child = spawn(file, argv, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let out = "";
  let err = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => { out = (out + d).slice(-(2 ** 20)); });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => { err = (err + d).slice(-(2 ** 20)); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once("error", (e) => { live.delete(child); reject(new Error(`bench: cannot start ${cmd}: ${e.message}`, { cause: e })); });
    child.once("close", (code, signal) => { live.delete(child); resolve({ code, signal }); });
  });
  return { child, exited, stdout: () => out, stderr: () => err };
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

/** Runs a command to completion within a deadline; a non-zero exit is an error carrying its stderr. */
export async function run(cmd: string, args: readonly string[], opts: { netns?: string; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  const t0 = performance.now();
  const p = start(cmd, args, opts);
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const timer = setTimeout(() => p.child.kill("SIGKILL"), timeoutMs);
  try {
    const { code, signal } = await p.exited;
    const seconds = (performance.now() - t0) / 1000;
    if (code !== 0) {
      const why = signal !== null ? `killed by ${signal}${signal === "SIGKILL" ? ` (deadline ${timeoutMs} ms?)` : ""}` : `exit ${code}`;
      throw new Error(`bench: ${cmd} ${args.join(" ")}: ${why}: ${p.stderr().trim().split("\n").slice(-3).join(" | ")}`);
    }
    return { stdout: p.stdout(), stderr: p.stderr(), seconds };
  } finally {
    clearTimeout(timer);
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Waits until something listens on a TCP port, by reading /proc/net/tcp (of the given namespace)
 * rather than connecting: a probe connection would be the one a single-shot listener accepts.
 */
export async function waitForListener(port: number, opts: { netns?: string; timeoutMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (;;) {
    const tables = opts.netns === undefined
      ? ["/proc/net/tcp", "/proc/net/tcp6"].map((f) => { try { return readFileSync(f, "utf8"); } catch { return ""; } }).join("\n")
      : (await run("ip", ["netns", "exec", opts.netns, "cat", "/proc/net/tcp", "/proc/net/tcp6"], { timeoutMs: 5000 })).stdout;
    // Columns: sl local_address rem_address st ...; st 0A is LISTEN.
    if (tables.split("\n").some((line) => { const f = line.trim().split(/\s+/); return f[1]?.endsWith(`:${hexPort}`) === true && f[3] === "0A"; })) return;
    if (Date.now() > deadline) throw new Error(`bench: nothing listens on port ${port} after ${opts.timeoutMs ?? 15_000} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Peak resident memory (VmHWM) of a live process in bytes, or undefined once it is gone. */
export function vmHwm(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m?.[1] === undefined ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds a process has used, all its threads together (utime + stime from /proc/PID/stat, in
 * USER_HZ ticks, which Linux fixes at 100 for user space); NaN once it is gone.
 */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** Reads a file through the page cache so the measurement that follows runs hot. */
export async function warm(...paths: string[]): Promise<void> {
  for (const path of paths) await run("dd", [`if=${path}`, "of=/dev/null", "bs=1M", "status=none"], { timeoutMs: 120_000 });
}
