/**
 * The reference measurements each engine figure is compared with, taken in the same invocation on
 * the same files: a raw socat pipe copy over TCP, rsync through its own daemon, and plain reads.
 * All of them run against a hot page cache (the caller warms the files first).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, run, start, waitForListener } from "./proc.js";

export interface SocatResult {
  /** Seconds from starting the sender until the receiver has written the last byte. */
  readonly seconds: number;
  /** Seconds of the fdatasync of the target afterwards (socat itself never flushes). */
  readonly flushSeconds: number;
}

/**
 * Raw copy: one socat reads the image and writes a TCP socket, another accepts and writes the
 * target file; 1 MiB buffers, as in issue 6. Run inside a namespace pair when `netns` is given
 * (receiver in `netns.receiver`, listening on `netns.receiverIp`).
 */
export async function socatCopy(source: string, target: string, netns?: { sender: string; receiver: string; receiverIp: string }): Promise<SocatResult> {
  const port = await freePort();
  const bindIp = netns?.receiverIp ?? "127.0.0.1";
  const receiver = start("socat", ["-u", "-b", "1048576", `TCP-LISTEN:${port},bind=${bindIp},reuseaddr`, `OPEN:${target},creat,trunc,wronly`],
    netns === undefined ? {} : { netns: netns.receiver });
  const waitOpts = netns === undefined ? {} : { netns: netns.receiver };
  await waitForListener(port, waitOpts);
  const t0 = performance.now();
  const sender = start("socat", ["-u", "-b", "1048576", `OPEN:${source},rdonly`, `TCP:${bindIp}:${port}`],
    netns === undefined ? {} : { netns: netns.sender });
  const timer = setTimeout(() => { sender.child.kill("SIGKILL"); receiver.child.kill("SIGKILL"); }, 600_000);
  try {
    const [s, r] = await Promise.all([sender.exited, receiver.exited]);
    const seconds = (performance.now() - t0) / 1000;
    if (s.code !== 0 || r.code !== 0) {
      throw new Error(`bench: socat copy failed (sender ${s.code ?? s.signal}, receiver ${r.code ?? r.signal}): ${sender.stderr().trim()} ${receiver.stderr().trim()}`);
    }
    const flush = await run("sync", ["--data", target]);
    return { seconds, flushSeconds: flush.seconds };
  } finally {
    clearTimeout(timer);
  }
}

export interface RsyncStats {
  readonly seconds: number;
  /** Bytes the client sent to the daemon (checksums of its old copy, requests). */
  readonly sentBytes: number;
  /** Bytes the client received from the daemon (literal data, block references). */
  readonly receivedBytes: number;
  readonly literalBytes: number;
  readonly matchedBytes: number;
}

export interface RsyncDaemon {
  /** Pulls `module/name` into `target` with --inplace --no-whole-file; returns rsync's own stats. */
  pull(name: string, target: string): Promise<RsyncStats>;
  stop(): Promise<void>;
}

/** Starts `rsync --daemon` on 127.0.0.1 (free port) serving `dir` read-only as module "bench". */
export async function startRsyncDaemon(dir: string, workDir: string): Promise<RsyncDaemon> {
  mkdirSync(workDir, { recursive: true });
  const port = await freePort();
  const conf = join(workDir, "rsyncd.conf");
  writeFileSync(conf, [
    `port = ${port}`,
    "address = 127.0.0.1",
    "use chroot = false",
    `pid file = ${join(workDir, "rsyncd.pid")}`,
    `log file = ${join(workDir, "rsyncd.log")}`,
    "[bench]",
    `path = ${dir}`,
    "read only = true",
    "uid = root",
    "gid = root",
    "",
  ].join("\n"));
  const daemon = start("rsync", ["--daemon", "--no-detach", `--config=${conf}`]);
  await waitForListener(port);
  return {
    async pull(name, target) {
      const r = await run("rsync", ["--inplace", "--no-whole-file", "--stats", `rsync://127.0.0.1:${port}/bench/${name}`, target]);
      const num = (label: string): number => {
        const m = new RegExp(`^${label}: ([\\d,]+)`, "m").exec(r.stdout);
        if (m?.[1] === undefined) throw new Error(`bench: rsync --stats has no "${label}" line: ${r.stdout.slice(0, 400)}`);
        return Number(m[1].replace(/,/g, ""));
      };
      return {
        seconds: r.seconds,
        sentBytes: num("Total bytes sent"),
        receivedBytes: num("Total bytes received"),
        literalBytes: num("Literal data"),
        matchedBytes: num("Matched data"),
      };
    },
    async stop() {
      if (daemon.child.exitCode === null) daemon.child.kill("SIGTERM");
      await daemon.exited;
    },
  };
}

export interface ReadBothResult {
  /** Both files read at once, as agent and client read their sides at the same time. */
  readonly parallelSeconds: number;
  /** One after the other. */
  readonly sequentialSeconds: number;
}

/** Reads two files to /dev/null (hot cache), at once and then one after the other. */
export async function readBoth(a: string, b: string): Promise<ReadBothResult> {
  const dd = (path: string) => run("dd", [`if=${path}`, "of=/dev/null", "bs=1M", "status=none"]);
  const t0 = performance.now();
  await Promise.all([dd(a), dd(b)]);
  const parallelSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  await dd(a);
  await dd(b);
  return { parallelSeconds, sequentialSeconds: (performance.now() - t1) / 1000 };
}
