/*
 * Which regions of a block device were written, from the kernel's own block-layer tracepoint
 * (block_rq_complete, read through a private tracefs instance): the agent's continuous passes read
 * only the regions written since it last read them, instead of the whole volume after any write.
 *
 * Why the tracepoint: it fires for every request the disk completes, whoever sent it (a mounted
 * file system, LVM or device-mapper stacked on the disk, raw writes), with its sector and length,
 * and needs neither a kernel module nor a change to how the volume is mounted. blktrace reads the
 * same events but needs its relay files in debugfs, which hardened kernels refuse; dm-era needs the
 * volume remapped through device-mapper.
 *
 * Correctness rests on one ordering: the tracepoint fires while the request completes, before the
 * writer hears of it. `settle()` writes a marker into the instance's ring buffer and waits until the
 * reader sees it: with the "global" trace clock, the merged per-CPU stream returns every event
 * committed before the marker first, so every write completed before `settle()` was called is then
 * in `pending`. Those move into `dirty`, which a pass consults; a region leaves `dirty` only when the
 * agent is about to read it, after that settle and after the page-cache drop, so the read sees the
 * write. Writes completing later stay in `pending` for the next pass. Anything that could break the
 * chain (a lost event, the reader gone, a marker that does not come back) marks everything dirty:
 * the cost of a failure is a full read, never a missed write.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, realpathSync, rmdirSync } from "node:fs";
import { cpus } from "node:os";
import { mkdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/** Bitmap granularity: 1 MiB, the smallest batch the client makes by default. */
const CHUNK = 2 ** 20;
/** Reads are leaf-aligned: a chunk read in parts is clean once its 16 leaves are all read. */
const PART = 64 * 1024;
const MARKER_TIMEOUT_MS = 5_000;
const TRACEFS = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
const PREFIX = "failback-agent-";

export interface WriteTracker {
  /** Takes in every write completed before this call; a pass starts with it. */
  settle(): Promise<void>;
  /** False once the events stopped flowing: everything then counts as written, for good. */
  readonly working: boolean;
  /** Whether any byte of the range may have been written since the agent last read it. */
  written(offset: number, length: number): boolean;
  /** The agent is about to read the range (after a settle and a page-cache drop). */
  reading(offset: number, length: number): void;
  /**
   * Bytes in the regions written since the agent last read them, settled or not (whole regions:
   * an upper bound of what a pass would send); undefined once the events stopped flowing.
   */
  backlog(): number | undefined;
  close(): Promise<void>;
}

/** The device's place in sysfs: the whole disk it is on, and where it starts on that disk. */
interface DiskPlace {
  diskDev: string;
  startSector: number;
  requestBased: boolean;
  /** A discard request may gather several ranges, of which the tracepoint names only the first. */
  discardRanges: boolean;
}

function placeOf(sysfs: string): DiskPlace {
  const partition = existsSync(join(sysfs, "partition"));
  // A partition's directory is inside its disk's (a symlink there: resolve it before going up).
  const real = realpathSync(sysfs);
  const disk = partition ? dirname(real) : real;
  return {
    diskDev: readFileSync(join(disk, "dev"), "utf8").trim(),
    startSector: partition ? Number(readFileSync(join(sysfs, "start"), "utf8").trim()) : 0,
    // block_rq_complete is a request-queue event: bio-based devices (device-mapper, md) have none.
    requestBased: existsSync(join(disk, "mq")),
    discardRanges: discardSegments(disk) > 1,
  };
}

/** Ranges one discard request may carry; unknown (an older kernel) is taken as several. */
function discardSegments(disk: string): number {
  try {
    return Number(readFileSync(join(disk, "queue", "max_discard_segments"), "utf8").trim());
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

async function tracefsRoot(): Promise<string | undefined> {
  const found = () => TRACEFS.find((dir) => existsSync(join(dir, "instances")));
  if (found()) return found();
  // systemd mounts tracefs on a running system; a minimal one may not have.
  await new Promise<void>((resolve) => execFile("mount", ["-t", "tracefs", "nodev", TRACEFS[0]!], { timeout: 10_000 }, () => resolve()));
  return found();
}

/**
 * Removes instances left by agents that are gone (killed before they could clean up), and the
 * `cat` that still reads each one: it outlives a killed agent, and keeps the instance busy.
 */
function removeStale(root: string): void {
  for (const name of readdirSync(join(root, "instances"))) {
    const pid = Number(name.slice(PREFIX.length).split("-")[0]);
    if (!name.startsWith(PREFIX) || !Number.isInteger(pid) || existsSync(`/proc/${pid}`)) continue;
    const pipe = join(root, "instances", name, "trace_pipe");
    for (const proc of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        if (readFileSync(`/proc/${proc}/cmdline`, "utf8").split("\0").includes(pipe)) process.kill(Number(proc));
      } catch {
        // Gone meanwhile, or not ours to read.
      }
    }
    try {
      rmdirSync(join(root, "instances", name));
    } catch {
      // Still busy (its reader exits on the next event) or already gone: it only holds memory.
    }
  }
}

/** Ring-buffer size per CPU: 4 MiB, less on large machines, so that a volume costs the kernel
 * about 64 MiB at most; an overrun costs only a whole read, never a missed write. */
function bufferKib(): number {
  return Math.max(256, Math.min(4096, Math.floor(65536 / Math.max(1, cpus().length))));
}

let instances = 0;

/**
 * Starts following writes to the block device whose sysfs directory is `sysfs` and whose size is
 * `size`; the reason in `off` when the kernel or system cannot tell (then the caller reads a
 * changed volume in full).
 */
export async function trackWrites(sysfs: string, size: number): Promise<{ tracker: WriteTracker } | { off: string }> {
  let place: DiskPlace;
  try {
    place = placeOf(sysfs);
  } catch (error) {
    return { off: `cannot place the device in sysfs (${(error as Error).message})` };
  }
  if (!place.requestBased) return { off: "not a request-based disk (device-mapper or md): its writes are followed on the disks beneath it" };
  const root = await tracefsRoot();
  if (!root) return { off: "tracefs is not available (mount -t tracefs nodev /sys/kernel/tracing)" };
  removeStale(root);
  const [major, minor] = place.diskDev.split(":").map(Number) as [number, number];
  instances += 1;
  const dir = join(root, "instances", `${PREFIX}${process.pid}-${major}-${minor}-${instances}`);
  try {
    await mkdir(dir);
    await writeFile(join(dir, "trace_clock"), "global");
    await writeFile(join(dir, "buffer_size_kb"), String(bufferKib()));
    const event = join(dir, "events", "block", "block_rq_complete");
    // The kernel's dev_t is major << 20 | minor. Reads are left out where the filter language allows.
    const dev = major * 2 ** 20 + minor;
    await writeFile(join(event, "filter"), `dev == ${dev} && !(rwbs ~ "R*")`).catch(() => writeFile(join(event, "filter"), `dev == ${dev}`));
    await writeFile(join(event, "enable"), "1");
  } catch (error) {
    await rmdir(dir).catch(() => undefined);
    return { off: `cannot set up a trace instance in ${root} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` };
  }
  const tracker = new TraceTracker(dir, place.startSector * 512, size, place.discardRanges);
  if (!(await tracker.start())) {
    await tracker.close();
    return { off: "the block tracepoint did not answer" };
  }
  return { tracker };
}

class TraceTracker implements WriteTracker {
  private readonly pending: Uint8Array;
  private readonly dirty: Uint8Array;
  /** Dirty chunks read in parts since they were last written: a bit per 64 KiB part read. */
  private readonly parts = new Map<number, number>();
  private reader: ChildProcess | null = null;
  private partial = "";
  private broken = false;
  private markers = 0;
  private waiting = new Map<string, () => void>();
  /** Events lost as of the previous settle; -1 before the first. */
  private lost = -1;
  /** Events were lost close to the last marker, maybe after it: the next settle trusts nothing. */
  private lostAfter = false;
  /** The stream itself reported lost events ("[LOST n EVENTS]") since the last settle. */
  private lostInStream = false;

  constructor(
    private readonly dir: string,
    /** Where the device starts on its disk, in bytes (a partition's offset). */
    private readonly origin: number,
    private readonly size: number,
    private readonly discardRanges: boolean,
  ) {
    const chunks = Math.ceil(size / CHUNK);
    this.pending = new Uint8Array(chunks);
    // Nothing was read yet: everything counts as written.
    this.dirty = new Uint8Array(chunks).fill(1);
  }

  /** Starts the reader and waits for a first marker: the events flow. */
  async start(): Promise<boolean> {
    // `cat` holds the blocking read of trace_pipe, which would otherwise pin a thread-pool thread.
    const reader = spawn("cat", [join(this.dir, "trace_pipe")], { stdio: ["ignore", "pipe", "ignore"] });
    this.reader = reader;
    reader.stdout!.setEncoding("utf8").on("data", (text: string) => this.parse(text));
    reader.once("exit", () => this.fail());
    reader.once("error", () => this.fail());
    return this.mark();
  }

  private fail(): void {
    this.broken = true;
    for (const wake of this.waiting.values()) wake();
    this.waiting.clear();
  }

  private parse(text: string): void {
    const lines = (this.partial + text).split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) {
      if (/\[LOST \d+ EVENTS\]/.test(line)) {
        this.lostInStream = true;
        continue;
      }
      const marker = /tracing_mark_write: (failback-\d+)/.exec(line);
      if (marker) {
        this.waiting.get(marker[1]!)?.();
        this.waiting.delete(marker[1]!);
        continue;
      }
      const event = /block_rq_complete: \d+,\d+ (\S+) \(.*?\) (\d+) \+ (\d+)/.exec(line);
      if (!event) {
        // A kernel that prints the event differently would have its writes missed while markers
        // still come back: such a line ends the tracking (the change stamp decides from then on).
        if (line.includes("block_rq_complete:")) this.fail();
        continue;
      }
      const rwbs = event[1]!.replace(/^F/, "");
      const sectors = Number(event[3]);
      if (rwbs.startsWith("R") || sectors === 0) continue;
      if (this.discardRanges && rwbs.includes("D")) this.pending.fill(1);
      else this.note(Number(event[2]) * 512 - this.origin, sectors * 512);
    }
  }

  private note(offset: number, length: number): void {
    const from = Math.max(0, offset);
    const to = Math.min(this.size, offset + length);
    for (let c = Math.floor(from / CHUNK); c * CHUNK < to; c += 1) this.pending[c] = 1;
  }

  /** Writes a marker and resolves true once the reader has seen it. */
  private async mark(): Promise<boolean> {
    if (this.broken) return false;
    this.markers += 1;
    const name = `failback-${this.markers}`;
    const seen = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        // Events no longer come back in time: nothing from this stream can be trusted again.
        this.waiting.delete(name);
        this.fail();
        resolve(false);
      }, MARKER_TIMEOUT_MS);
      this.waiting.set(name, () => {
        clearTimeout(timer);
        resolve(!this.broken);
      });
    });
    try {
      await writeFile(join(this.dir, "trace_marker"), name);
    } catch {
      this.fail();
    }
    return seen;
  }

  /** Events the ring buffer had to drop since the instance was made (overruns and drops, all CPUs). */
  private async lostEvents(): Promise<number> {
    let total = 0;
    for (const cpu of readdirSync(join(this.dir, "per_cpu"))) {
      const stats = await readFile(join(this.dir, "per_cpu", cpu, "stats"), "utf8");
      for (const m of stats.matchAll(/^(?:overrun|commit overrun|dropped events): (\d+)/gm)) total += Number(m[1]);
    }
    return total;
  }

  get working(): boolean {
    return !this.broken;
  }

  /**
   * Lost events are counted by the ring buffer when they are dropped, so a count read after the
   * marker came back covers every loss before it; a loss between the marker and that read may
   * concern the next interval, hence `lostAfter`.
   */
  async settle(): Promise<void> {
    const before = await this.lostEvents().catch(() => Number.NaN);
    const seen = await this.mark();
    const after = await this.lostEvents().catch(() => Number.NaN);
    const counted = !Number.isNaN(before) && !Number.isNaN(after) && (this.lost === -1 || before === this.lost);
    const intact = seen && counted && before === after && !this.lostAfter && !this.lostInStream;
    if (!intact) {
      // The chain is broken: everything counts as written, once more from here.
      this.dirty.fill(1);
      this.parts.clear();
    } else {
      for (let c = 0; c < this.pending.length; c += 1) {
        if (!this.pending[c]) continue;
        this.dirty[c] = 1;
        // Parts read before this write no longer count.
        this.parts.delete(c);
      }
    }
    this.lostAfter = before !== after || this.lostInStream;
    this.lostInStream = false;
    this.lost = after;
    this.pending.fill(0);
  }

  written(offset: number, length: number): boolean {
    if (this.broken) return true;
    const end = Math.min(this.size, offset + length);
    for (let c = Math.floor(offset / CHUNK); c * CHUNK < end; c += 1) if (this.dirty[c]) return true;
    return false;
  }

  backlog(): number | undefined {
    if (this.broken) return undefined;
    let bytes = 0;
    for (let c = 0; c < this.dirty.length; c += 1) {
      if (this.dirty[c] || this.pending[c]) bytes += Math.min(CHUNK, this.size - c * CHUNK);
    }
    return bytes;
  }

  reading(offset: number, length: number): void {
    // A chunk is clean once every part of it (to the volume's end) was read since it was written.
    const end = Math.min(this.size, offset + length);
    for (let c = Math.floor(offset / CHUNK); c * CHUNK < end; c += 1) {
      if (!this.dirty[c]) continue;
      const from = c * CHUNK;
      const to = Math.min(this.size, from + CHUNK);
      let mask = this.parts.get(c) ?? 0;
      for (let p = Math.floor((Math.max(offset, from) - from) / PART); from + p * PART < Math.min(end, to); p += 1) {
        // A part counts only when read whole (or to the chunk's end).
        if (from + p * PART >= offset && Math.min(to, from + (p + 1) * PART) <= end) mask |= 1 << p;
      }
      const all = (1 << Math.ceil((to - from) / PART)) - 1;
      if (mask === all) {
        this.dirty[c] = 0;
        this.parts.delete(c);
      } else {
        this.parts.set(c, mask);
      }
    }
  }

  async close(): Promise<void> {
    this.reader?.removeAllListeners("exit");
    this.reader?.kill();
    this.fail();
    await writeFile(join(this.dir, "events", "block", "block_rq_complete", "enable"), "0").catch(() => undefined);
    // The instance is busy until `cat` has let go of trace_pipe.
    for (let attempt = 0; attempt < 50; attempt += 1) {
      try {
        await rmdir(this.dir);
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }
}
