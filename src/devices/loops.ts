/*
 * What each loop device reads and writes, and which files the kernel is using as disks. The loop
 * driver records what backs a loop device only in /sys/block/loopN/loop/backing_file: it makes no
 * holders/ entry on a backing disk and opens the backing file or disk without an exclusive claim
 * (drivers/block/loop.c, loop_configure), so neither sysfs holders nor O_EXCL show that a disk or
 * an image file is in use. Invariants:
 * - a backing is identified by what it is, not by its name: a block device by its major:minor
 *   (the stat of its node), a file by "major:minor:inode" of the filesystem holding it
 *   (loop/backing_dev + loop/backing_inode where the kernel has them, else the stat of the path);
 * - a path that cannot be looked at is kept as written, so a caller can still match it by name.
 */
import type { BigIntStats } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";

/** What one loop device reads and writes. */
export interface LoopBacking {
  /** The path as the kernel records it, without its " (deleted)" mark. */
  path: string;
  /** major:minor when it is a block device, else null. */
  blockDev: string | null;
  /** "major:minor:inode" when it is a file that could be identified, else null. */
  fileId: string | null;
}

async function readText(path: string): Promise<string | null> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch {
    return null;
  }
}

/** glibc's dev_t layout (sys/sysmacros.h gnu_dev_major/gnu_dev_minor), which Node's stat returns. */
export function devNumber(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/** A file's identity whatever name it is reached by: "major:minor:inode". */
export function fileIdentity(stats: Pick<BigIntStats, "dev" | "ino">): string {
  return `${devNumber(stats.dev)}:${stats.ino}`;
}

// backing_dev is read as "major:minor", or as the kernel's own dev_t number (MINORBITS = 20,
// include/linux/kdev_t.h) should a kernel print it that way.
function parseKernelDev(text: string): string | null {
  if (/^\d+:\d+$/.test(text)) return text;
  if (!/^\d+$/.test(text)) return null;
  const n = BigInt(text);
  return `${n >> 20n}:${n & 0xfffffn}`;
}

/** Reads loop/ of one loop device's sysfs folder; null when nothing is attached. */
export async function readLoopBacking(root: string, loopDir: string): Promise<LoopBacking | null> {
  const recorded = await readText(join(loopDir, "loop", "backing_file"));
  if (!recorded) return null;
  // The kernel appends " (deleted)" once the backing file is unlinked (d_path, fs/d_path.c).
  const path = recorded.replace(/ \(deleted\)$/, "");
  let fileId: string | null = null;
  const dev = await readText(join(loopDir, "loop", "backing_dev"));
  const inode = await readText(join(loopDir, "loop", "backing_inode"));
  if (dev && inode && /^\d+$/.test(inode)) {
    const number = parseKernelDev(dev);
    if (number) fileId = `${number}:${inode}`;
  }
  let blockDev: string | null = null;
  const info = await stat(join(root, path), { bigint: true }).catch(() => null);
  if (info?.isBlockDevice()) blockDev = devNumber(info.rdev);
  else if (info?.isFile() && fileId === null) fileId = fileIdentity(info);
  return { path, blockDev, fileId };
}
