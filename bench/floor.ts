/**
 * The floor of figures 1 and 3: the CPU time of the per-byte work that issue 6's rules leave no way
 * around, measured on this machine, and the fastest wall time it allows if every core were busy with
 * it and nothing else. A figure whose goal lies below its floor cannot be met here by any
 * implementation that keeps the rules and runs on Node's crypto and this BLAKE3 binding, however it
 * is written; one above its floor can.
 *
 * The work runs in one plain Node process (bench/floor-proc.ts), synchronously, with no engine, no
 * sockets and no pipeline: each step is timed on its own with process.cpuUsage() around each call,
 * so what the loop itself costs between the calls is never counted, and the cost of the timing
 * itself (measured on empty calls) is taken off. Both sides run in the one process, each step right
 * after the one before on the same buffer, hot in the CPU's cache: cheaper than two processes
 * handing data over a socket, never dearer, which is what a lower bound needs.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { blake3 } from "@napi-rs/blake-hash";
import { run } from "./proc.js";
import { bytes, secs } from "./report.js";

/** The engine's leaf (LEAF_SIZE, src/replication/codec.ts). */
const LEAF = 64 * 1024;
/** The engine's read size (PIECE, src/replication/leaves.ts): reads of 1 MiB, each hashed while
 * it is still in the CPU's cache. One read is also one encrypted message here (see `fullPass`). */
export const READ = 16 * LEAF;

const ZERO_LEAF = Buffer.alloc(LEAF);

/**
 * A 1 MiB read buffer 64 bytes past a page boundary. Where the buffer sits against the page cache's
 * pages decides the cost of the kernel's copy on this machine: 2 GiB in 1 MiB preads took 0.12 CPU-s
 * into memory on a page boundary or 64 bytes past it, but 0.25 at 16 bytes past, which is where
 * malloc puts a large Node Buffer (measured in turn in one process, 2026-11-26). Where the buffer sits
 * is an implementation's choice, so the floor takes a cheap one. (pwrite showed no such difference:
 * its cost is in the fresh page cache pages.)
 */
function offPage(): Buffer {
  return Buffer.allocUnsafeSlow(READ + 4096).subarray(64, 64 + READ);
}

export type Side = "agent" | "client";

export interface FloorStep {
  readonly side: Side;
  /** read, zero check, BLAKE3, encrypt, decrypt, pwrite, fdatasync. */
  readonly step: string;
  /** Bytes the step worked on (for the zero check: all bytes read, though it stops at a leaf's
   * first non-zero byte). */
  readonly bytes: number;
  readonly cpuSeconds: number;
  readonly wallSeconds: number;
  readonly calls: number;
}

export interface FloorResult {
  readonly steps: readonly FloorStep[];
  /** Sum over the steps, both sides. */
  readonly cpuSeconds: number;
  /** os.availableParallelism(): the cores the work could be spread over. */
  readonly cores: number;
  /** cpuSeconds / cores: every core busy with this work and nothing else. */
  readonly seconds: number;
  /** CPU seconds one empty timed call cost; taken off every step, once per call. */
  readonly timerSecondsPerCall: number;
  readonly volumeBytes: number;
  /** Non-zero leaves' bytes: what must be hashed, and in figure 1 encrypted and written. */
  readonly dataBytes: number;
}

class Step {
  cpu = 0;
  wall = 0;
  bytes = 0;
  calls = 0;
  constructor(readonly side: Side, readonly step: string) {}

  time<T>(n: number, fn: () => T): T {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = fn();
    const t1 = performance.now();
    const c = process.cpuUsage(c0);
    this.cpu += (c.user + c.system) / 1e6;
    this.wall += (t1 - t0) / 1000;
    this.bytes += n;
    this.calls += 1;
    return r;
  }
}

/** What one empty `Step.time` costs in CPU: a getrusage on each side of nothing. */
function timerCost(): number {
  const s = new Step("agent", "timer");
  for (let i = 0; i < 20_000; i += 1) s.time(0, () => undefined);
  return s.cpu / s.calls;
}

function result(steps: readonly Step[], volumeBytes: number, dataBytes: number): FloorResult {
  const timer = timerCost();
  const out = steps.map((s) => ({ side: s.side, step: s.step, bytes: s.bytes, calls: s.calls,
    cpuSeconds: Math.max(0, s.cpu - s.calls * timer), wallSeconds: s.wall }));
  const cpuSeconds = out.reduce((sum, s) => sum + s.cpuSeconds, 0);
  const cores = availableParallelism();
  return { steps: out, cpuSeconds, cores, seconds: cpuSeconds / cores, timerSecondsPerCall: timer, volumeBytes, dataBytes };
}

function readFull(fd: number, into: Buffer, length: number, position: number): number {
  let got = 0;
  while (got < length) {
    const n = readSync(fd, into, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/** Runs of non-zero leaves in `piece`, as [start, end) byte offsets; memcmp against a zero leaf,
 * as the engine's isZero does. */
function nonZeroRuns(piece: Buffer): [number, number][] {
  const runs: [number, number][] = [];
  for (let at = 0; at < piece.length; at += LEAF) {
    const leaf = piece.subarray(at, at + LEAF);
    if (leaf.equals(leaf.length === LEAF ? ZERO_LEAF : ZERO_LEAF.subarray(0, leaf.length))) continue;
    const last = runs[runs.length - 1];
    if (last !== undefined && last[1] === at) last[1] = at + leaf.length;
    else runs.push([at, at + leaf.length]);
  }
  return runs;
}

function hashLeaves(runs: readonly Buffer[]): Buffer[] {
  const digests: Buffer[] = [];
  for (const data of runs) for (let at = 0; at < data.length; at += LEAF) digests.push(blake3(data.subarray(at, at + LEAF)));
  return digests;
}

function runBytes(runs: readonly [number, number][]): number {
  return runs.reduce((sum, [a, b]) => sum + b - a, 0);
}

/**
 * Figure 1's floor: a full pass of `source` onto a fresh sparse file `scratch` of its size.
 * Agent: read, zero check, BLAKE3 of each non-zero leaf, AES-256-GCM of the non-zero data.
 * Client: decrypt and check the tag, BLAKE3 of each leaf, pwrite, one fdatasync at the end.
 *
 * One 1 MiB read is one GCM message (its non-zero runs fed to one cipher), not 16 KiB records as
 * TLS cuts them: node:crypto can only start a record with a whole new cipher context, which costs
 * more than TLS's per-record nonce and tag, so 1 MiB messages count the per-byte work and as
 * little per-record work as possible. The two sides' digests are compared, untimed (32 bytes a
 * leaf), so a wrong decryption fails the floor rather than passing for a fast one.
 */
export function fullPass(source: string, scratch: string): FloorResult {
  const read = new Step("agent", "read");
  const zero = new Step("agent", "zero check");
  const agentHash = new Step("agent", "BLAKE3");
  const encrypt = new Step("agent", "AES-256-GCM encrypt");
  const decrypt = new Step("client", "AES-256-GCM decrypt");
  const clientHash = new Step("client", "BLAKE3");
  const write = new Step("client", "pwrite");
  const flush = new Step("client", "fdatasync");
  const key = randomBytes(32);
  const iv = Buffer.alloc(12);
  const buf = offPage();
  const inFd = openSync(source, "r");
  let outFd: number | undefined;
  let dataBytes = 0;
  try {
    const size = fstatSync(inFd).size;
    outFd = openSync(scratch, "w");
    ftruncateSync(outFd, size);
    const out = outFd;
    for (let pos = 0, seq = 0; pos < size; pos += READ, seq += 1) {
      const want = Math.min(READ, size - pos);
      const got = read.time(want, () => readFull(inFd, buf, want, pos));
      if (got !== want) throw new Error(`floor: short read of ${source} at ${pos}`);
      const piece = buf.subarray(0, got);
      const runs = zero.time(got, () => nonZeroRuns(piece));
      const n = runBytes(runs);
      if (n === 0) continue;
      dataBytes += n;
      const plain = runs.map(([a, b]) => piece.subarray(a, b));
      const sent = agentHash.time(n, () => hashLeaves(plain));
      iv.writeUInt32BE(seq, 8);
      const { sealed, tag } = encrypt.time(n, () => {
        const c = createCipheriv("aes-256-gcm", key, iv);
        const s = plain.map((p) => c.update(p));
        c.final();
        return { sealed: s, tag: c.getAuthTag() };
      });
      const opened = decrypt.time(n, () => {
        const d = createDecipheriv("aes-256-gcm", key, iv);
        d.setAuthTag(tag);
        const o = sealed.map((s) => d.update(s));
        d.final();
        return o;
      });
      const received = clientHash.time(n, () => hashLeaves(opened));
      if (received.some((d, i) => !d.equals(sent[i]!))) throw new Error(`floor: the client's digests differ from the agent's at ${pos}`);
      write.time(n, () => {
        for (const [k, [a]] of runs.entries()) {
          const data = opened[k]!;
          for (let off = 0; off < data.length;) off += writeSync(out, data, off, data.length - off, pos + a + off);
        }
      });
    }
    flush.time(dataBytes, () => fdatasyncSync(out));
    return result([read, zero, agentHash, encrypt, decrypt, clientHash, write, flush], size, dataBytes);
  } finally {
    closeSync(inFd);
    if (outFd !== undefined) closeSync(outFd);
    rmSync(scratch, { force: true });
  }
}

/**
 * Figure 3's floor: each side reads its whole image (agent: `source`, client: `target`), checks
 * every leaf for zeros and hashes the non-zero ones. Nothing else has to happen on identical disks.
 */
export function equalPass(source: string, target: string): FloorResult {
  const steps: Step[] = [];
  const buf = offPage();
  let volumeBytes = 0;
  let dataBytes = 0;
  for (const [side, path] of [["agent", source], ["client", target]] as const) {
    const read = new Step(side, "read");
    const zero = new Step(side, "zero check");
    const hash = new Step(side, "BLAKE3");
    steps.push(read, zero, hash);
    const fd = openSync(path, "r");
    try {
      const size = fstatSync(fd).size;
      volumeBytes = size;
      dataBytes = 0;
      for (let pos = 0; pos < size; pos += READ) {
        const want = Math.min(READ, size - pos);
        const got = read.time(want, () => readFull(fd, buf, want, pos));
        if (got !== want) throw new Error(`floor: short read of ${path} at ${pos}`);
        const piece = buf.subarray(0, got);
        const runs = zero.time(got, () => nonZeroRuns(piece));
        const n = runBytes(runs);
        dataBytes += n;
        if (n > 0) hash.time(n, () => hashLeaves(runs.map(([a, b]) => piece.subarray(a, b))));
      }
    } finally {
      closeSync(fd);
    }
  }
  return result(steps, volumeBytes, dataBytes);
}

export type FloorArgs =
  | { readonly kind: "full"; readonly source: string; readonly scratch: string }
  | { readonly kind: "equal"; readonly source: string; readonly target: string };

const here = dirname(fileURLToPath(import.meta.url));

/** One floor run in a fresh Node process (bench/floor-proc.ts): nothing of the bench's own heap,
 * timers or children is in its CPU time. Removes the scratch file even if the process died. */
export async function measureFloor(args: FloorArgs): Promise<FloorResult> {
  try {
    const r = await run(process.execPath, [join(here, "floor-proc.js"), JSON.stringify(args)], { timeoutMs: 600_000 });
    return JSON.parse(r.stdout.trim().split("\n").pop() ?? "") as FloorResult;
  } finally {
    if (args.kind === "full") rmSync(args.scratch, { force: true });
  }
}

/** "3.10 CPU-s of unavoidable work = 1.55 s on 2 cores". */
export function floorHeadline(f: FloorResult): string {
  return `${f.cpuSeconds.toFixed(2)} CPU-s of unavoidable work = ${secs(f.seconds)} on ${f.cores} cores`;
}

/** Each step's CPU seconds and speed, per side, for the notes. */
export function floorSteps(f: FloorResult): string {
  const side = (s: Side) => f.steps.filter((x) => x.side === s).map((x) => {
    const speed = x.cpuSeconds > 0 ? ` (${(x.bytes / x.cpuSeconds / 1e9).toFixed(2)} GB/s)` : "";
    return x.step === "fdatasync" ? `${x.step} ${x.cpuSeconds.toFixed(2)} CPU-s (+ ${secs(x.wallSeconds)} waiting on the disk, not counted)`
      : `${x.step} ${bytes(x.bytes)} ${x.cpuSeconds.toFixed(2)} CPU-s${speed}`;
  }).join(", ");
  const cpu = (s: Side) => f.steps.filter((x) => x.side === s).reduce((sum, x) => sum + x.cpuSeconds, 0).toFixed(2);
  return `agent ${cpu("agent")} CPU-s: ${side("agent")}; client ${cpu("client")} CPU-s: ${side("client")}`;
}

/**
 * The floor's seconds without its pwrite step, or undefined when it has none. A writer with
 * O_DIRECT hands the disk its own buffer instead of copying into the page cache, so that copy is
 * not strictly unavoidable; and on this VM it is the step that varies most (fresh page-cache pages:
 * 0.5 to 3 CPU-s for the same 1.65 GiB). A goal out of reach even without it is out of reach.
 */
export function secondsWithoutPwrite(f: FloorResult): number | undefined {
  const w = f.steps.find((s) => s.step === "pwrite");
  return w === undefined ? undefined : (f.cpuSeconds - w.cpuSeconds) / f.cores;
}

/** How a floor stands against the goal's time, for the notes. */
export function reach(floorSeconds: number, goalSeconds: number): string {
  return floorSeconds > goalSeconds
    ? `the floor is ${(floorSeconds / goalSeconds).toFixed(2)}x that: out of reach on this machine`
    : `the floor is ${(floorSeconds / goalSeconds).toFixed(2)}x that: not ruled out by the floor`;
}
