/*
 * A volume backed by a regular file (a disk image) or a block device. Block devices are opened
 * for writing with O_EXCL: on Linux that makes the kernel refuse a device that is mounted or held
 * by LVM/md/dm (EBUSY), a last guard below the inventory's checks (open(2), "O_EXCL" on block
 * devices). A block device's size comes from sysfs, since stat() reports 0 for it.
 *
 * A sparse image file (fewer blocks allocated than its size: a blank target, a thin image) is also
 * opened with O_DIRECT, for `scan`: a buffered read of a hole makes the kernel allocate and zero a
 * page-cache page for every 4 KiB of it (about 0.5 GB/s here), while a direct read returns the zeros
 * at memory speed. So is a local disk (a block device opened for writing): a pass's first look at
 * each batch, and the final pass at the launch, then read what the device holds, not what the page
 * cache kept of what this client wrote. Direct reads stay coherent with buffered writes (the kernel
 * writes back any dirty page in the range first), and fall back to buffered reads whenever the
 * kernel refuses them (EINVAL) or the memory is not page-aligned (aligned.ts), so they change the
 * speed, never the bytes.
 */
import { execFile } from "node:child_process";
import { constants, readFileSync } from "node:fs";
import { open, readFile, stat, type FileHandle } from "node:fs/promises";
import { isAligned } from "./aligned.js";
import { ioError, ReplicationError } from "./errors.js";
import { trackWrites, type WriteTracker } from "./write-tracker.js";

/** What the agent serves from: a disk read at offsets. `path` names it in messages. */
export interface BlockSource {
  readonly path: string;
  readonly size: number;
  /** Reads `length` bytes at `offset` (fewer at the end), into `into` when given. */
  read(offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /**
   * Forgets what the page cache holds of the device, so the reads that follow see what is on it
   * now: a mounted file system writes its data past the block device's cache, which then goes
   * stale. Absent where there is no such cache to distrust (image files, memory).
   */
  refresh?(): Promise<void>;
  /**
   * A value that changes whenever the source's content may have: a device's completed writes and
   * discards, an image file's modification time. Equal stamps at the start of two passes mean
   * nothing was written in between. Undefined when the source cannot tell.
   */
  changeStamp?(): Promise<string | undefined>;
  /**
   * Starts following where the source is written, region by region (write-tracker.ts); `off` says
   * why it cannot. Absent where only a change stamp can tell (image files, memory).
   */
  trackWrites?(): Promise<{ tracker: WriteTracker } | { off: string }>;
  /** Like `read`, for a pass's one look at a batch: may bypass the page cache (a sparse image, a local disk). */
  scan?(offset: number, length: number, into?: Buffer): Promise<Buffer>;
  close(): Promise<void>;
}

/** What the client writes into: a disk it can also read back, and flush to stable storage. */
export interface BlockSink extends BlockSource {
  write(offset: number, data: Buffer): Promise<void>;
  flush(): Promise<void>;
  /**
   * A value that changes whenever the disk under the sink completes a read or a write (the block
   * layer's counters of the device, or of the one holding an image file; else the kernel's dirty
   * and writeback counts), so that a long flush or read can be told from a stalled disk
   * (disk-stall.ts). Undefined where nothing can be read.
   */
  ioProgress?(): Promise<string | undefined>;
}

/** A disk-image file or block device: both a source and a sink. */
export type Volume = BlockSink;

/** The device's directory in sysfs, from its device number. */
export function sysfsOf(rdev: number): string {
  const major = ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
  const minor = (rdev & 0xff) | ((rdev >> 12) & ~0xff);
  return `/sys/dev/block/${major}:${minor}`;
}

async function blockDeviceSize(rdev: number, path: string): Promise<number> {
  const text = await readFile(`${sysfsOf(rdev)}/size`, "utf8").catch(() => "");
  const sectors = Number(text.trim());
  if (!text || !Number.isFinite(sectors)) throw new ReplicationError("IO_ERROR", `cannot read the size of block device ${path} from sysfs`);
  return sectors * 512;
}

/**
 * BLKFLSBUF, through util-linux's blockdev (Node has no ioctl): writes back the device's dirty
 * cache and drops the rest. Measured on a loop device under a mounted ext4: after a file write and
 * sync, a buffered read of the device returned the old block until this ran (O_DIRECT saw the new).
 */
function dropDeviceCache(path: string, side: "agent" | "client"): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("blockdev", ["--flushbufs", path], { timeout: 60_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const why = (error as NodeJS.ErrnoException).code === "ENOENT" ? "blockdev (util-linux) is not installed" : stderr.trim() || error.message;
      reject(new ReplicationError("IO_ERROR", `${side}: cannot drop the page cache of ${path} before reading it (${why}): changes made through a mounted file system could be missed`));
    });
  });
}

/** A small kernel file's text (sysfs, /proc), or "" where it cannot be read. */
function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/**
 * The block layer's own counters of a device (Documentation/block/stat.rst), or undefined where they
 * cannot be read or stand still whatever happens (I/O accounting off: queue/iostats 0). A whole disk
 * counts the I/O of its partitions and of device-mapper volumes on it; a partition's queue is its
 * disk's, one directory up. Read synchronously: sysfs answers from memory, while the thread pool
 * may be full of operations stuck on the very disk in question (see `ioProgress`).
 */
function blockCounters(rdev: number): string[] | undefined {
  const dir = sysfsOf(rdev);
  const iostats = readOrEmpty(`${dir}/queue/iostats`) || readOrEmpty(`${dir}/../queue/iostats`);
  if (iostats.trim() !== "1") return undefined;
  const fields = readOrEmpty(`${dir}/stat`).trim().split(/\s+/);
  return fields.length < 7 ? undefined : fields;
}

/**
 * Writes completed, sectors written, and, where the kernel has them, discards completed and sectors
 * discarded. A write still in the page cache of a mounted file system is not on the device yet
 * either: it will count when it gets there.
 */
async function deviceStamp(rdev: number): Promise<string | undefined> {
  const f = blockCounters(rdev);
  return f && [f[4], f[6], f[11] ?? "", f[13] ?? ""].join(":");
}

/** Reads, writes and cache flushes completed: they move while the device works through its queue. */
function ioProgress(rdev: number): string | undefined {
  const f = blockCounters(rdev);
  return f && `${f[0]}:${f[4]}:${f[15] ?? ""}`;
}

/**
 * Where no device counts the I/O (an image file on btrfs, ZFS, NFS or overlay, whose device number
 * is an anonymous one; a device with its I/O accounting off), the kernel's dirty and under-writeback
 * page counts: they move while any writeback makes progress, and stand still when it is stuck.
 */
function writebackProgress(): string | undefined {
  const text = readOrEmpty("/proc/meminfo");
  const dirty = /^Dirty:\s+(\d+)/m.exec(text)?.[1];
  const writeback = /^Writeback:\s+(\d+)/m.exec(text)?.[1];
  return dirty === undefined || writeback === undefined ? undefined : `${dirty}:${writeback}`;
}

/**
 * An image file's modification and change times (ns) and size. The kernel sets those times from a
 * coarse clock, so two writes a few milliseconds apart may leave the same time: a file written in
 * the last two seconds has no stamp, and is read again.
 */
async function fileStamp(handle: FileHandle): Promise<string | undefined> {
  const info = await handle.stat({ bigint: true });
  const newest = Math.max(Number(info.mtimeMs), Number(info.ctimeMs));
  if (Date.now() - newest < 2_000) return undefined;
  return `${info.mtimeNs}:${info.ctimeNs}:${info.size}:${info.ino}`;
}

/** O_DIRECT wants offsets and lengths aligned to the logical block size: 4096 covers them all. */
const DIRECT_ALIGN = 4096;

/** Reads into `buf` until `length` bytes or the end; returns what was read. */
async function readFully(handle: FileHandle, buf: Buffer, offset: number, length: number): Promise<Buffer> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, offset + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  // Every byte up to `done` was overwritten by the read; only those are returned.
  return done === buf.length ? buf : buf.subarray(0, done);
}

export async function openVolume(path: string, mode: "read" | "write", side: "agent" | "client"): Promise<Volume> {
  let handle: FileHandle;
  let direct: FileHandle | null = null;
  const retired: FileHandle[] = [];
  let size: number;
  /** The device number, for a block device. */
  let device: number | undefined;
  /** The device an image file's file system lives on (a partition, a loop device; none for tmpfs). */
  let holder: number;
  try {
    const info = await stat(path);
    if (!info.isFile() && !info.isBlockDevice()) throw new ReplicationError("IO_ERROR", `${side}: ${path} is neither a disk nor a disk-image file`);
    const flags = mode === "read" ? constants.O_RDONLY : constants.O_RDWR | (info.isBlockDevice() ? constants.O_EXCL : 0);
    handle = await open(path, flags);
    size = info.isBlockDevice() ? await blockDeviceSize(info.rdev, path) : info.size;
    if (info.isBlockDevice()) device = info.rdev;
    holder = info.dev;
    // A filesystem without O_DIRECT (tmpfs) refuses the open: then scans are buffered reads.
    const sparse = info.isFile() && info.blocks * 512 < info.size;
    if (sparse || (info.isBlockDevice() && mode === "write")) direct = await open(path, constants.O_RDONLY | constants.O_DIRECT).catch(() => null);
  } catch (error) {
    if (error instanceof ReplicationError) throw error;
    if ((error as NodeJS.ErrnoException).code === "EBUSY") {
      throw new ReplicationError("TARGET_BUSY", `${side}: ${path} is in use (mounted or held by LVM, md or device-mapper); nothing was written to it`, { cause: error });
    }
    throw ioError(side, "opening", path, 0, error);
  }
  const read = async (offset: number, length: number, into?: Buffer): Promise<Buffer> => {
    try {
      return await readFully(handle, into ?? Buffer.allocUnsafe(length), offset, length);
    } catch (error) {
      throw ioError(side, "reading", path, offset, error);
    }
  };
  return {
    path,
    size,
    ...(device !== undefined ? { refresh: () => dropDeviceCache(path, side), trackWrites: () => trackWrites(sysfsOf(device), size) } : {}),
    changeStamp: () => (device !== undefined ? deviceStamp(device) : fileStamp(handle).catch(() => undefined)),
    ioProgress: async () => ioProgress(device ?? holder) ?? writebackProgress(),
    read,
    async scan(offset, length, into) {
      const viaDirect = direct;
      // The memory must be aligned too: only a page-aligned buffer (aligned.ts) is read directly.
      if (viaDirect && into && isAligned(into, DIRECT_ALIGN) && offset % DIRECT_ALIGN === 0 && length % DIRECT_ALIGN === 0) {
        try {
          return await readFully(viaDirect, into, offset, length);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EINVAL") throw ioError(side, "reading", path, offset, error);
          // The kernel refused direct I/O for an aligned buffer and range: buffered reads from now on. The
          // handle stays open until close(): another read may still be using it.
          if (direct === viaDirect) retired.push(viaDirect);
          direct = null;
        }
      }
      return read(offset, length, into);
    },
    async write(offset, data) {
      try {
        let done = 0;
        while (done < data.length) done += (await handle.write(data, done, data.length - done, offset + done)).bytesWritten;
      } catch (error) {
        throw ioError(side, "writing", path, offset, error);
      }
    },
    async flush() {
      try {
        await handle.datasync();
      } catch (error) {
        throw ioError(side, "flushing", path, 0, error);
      }
    },
    async close() {
      for (const h of [direct, ...retired]) await h?.close().catch(() => undefined);
      await handle.close();
    },
  };
}
