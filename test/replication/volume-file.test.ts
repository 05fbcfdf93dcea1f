/*
 * Image files as volumes: a sparse one is scanned with O_DIRECT (volume-file.ts); a scan must
 * return exactly the bytes a buffered read returns, including bytes just written and still dirty in
 * the page cache, and ranges the kernel will not read directly (unaligned). And the disk progress
 * the client's stall check reads past its limit (disk-stall.ts).
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, constants, openSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, open, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openVolume } from "../../src/replication/index.js";

const MiB = 2 ** 20;
let dir: string;
beforeAll(async () => {
  // Under /var/tmp: a disk-backed filesystem where O_DIRECT exists (tmpfs refuses it).
  dir = await mkdtemp(join("/var/tmp", "volume-file-")).catch(() => mkdtemp(join(tmpdir(), "volume-file-")));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("volume files", () => {
  it("a sparse image scans to the same bytes as it reads, dirty pages and odd ranges included", async () => {
    const path = join(dir, "sparse.img");
    await writeFile(path, "");
    await truncate(path, 8 * MiB + 1000);
    const volume = await openVolume(path, "write", "client");
    try {
      const data = randomBytes(MiB);
      await volume.write(3 * MiB, data);
      // Written through the page cache, not flushed: a direct read must still see it.
      const buf = Buffer.allocUnsafeSlow(4 * MiB);
      const scanned = Buffer.from(await volume.scan!(2 * MiB, 4 * MiB, buf));
      expect(scanned.equals(await volume.read(2 * MiB, 4 * MiB))).toBe(true);
      expect(scanned.subarray(MiB, 2 * MiB).equals(data)).toBe(true);
      expect(scanned.subarray(0, MiB).every((b) => b === 0)).toBe(true);
      // The tail is not a multiple of the block size: read buffered, same bytes, short at the end.
      const tail = await volume.scan!(8 * MiB, 64 * 1024);
      expect(tail.length).toBe(1000);
      expect(tail.every((b) => b === 0)).toBe(true);
    } finally {
      await volume.close();
    }
  });
});

/** Threads of this process waiting in the kernel for a writer to a FIFO they are opening. */
function threadsOpeningFifos(): number {
  return readdirSync("/proc/self/task").filter((task) => {
    try {
      return readFileSync(`/proc/self/task/${task}/wchan`, "utf8") === "wait_for_partner";
    } catch {
      return false;
    }
  }).length;
}

describe("a volume file's disk progress (ioProgress)", () => {
  it("is the counters of the disk holding an image file, or the kernel's writeback where no disk counts it", async () => {
    const onDisk = join(dir, "progress.img");
    await writeFile(onDisk, randomBytes(MiB));
    const volume = await openVolume(onDisk, "write", "client");
    try {
      // reads:writes:flushes completed, from /sys/dev/block/<dev>/stat
      expect(await volume.ioProgress?.()).toMatch(/^\d+:\d+:\d*$/);
    } finally {
      await volume.close();
    }
    // tmpfs, like btrfs or NFS, has an anonymous device number: no block counters to read.
    const shm = await stat("/dev/shm").catch(() => null);
    if (!shm?.isDirectory()) return;
    const inMemory = await mkdtemp("/dev/shm/volume-file-");
    try {
      const image = join(inMemory, "progress.img");
      await writeFile(image, randomBytes(MiB));
      const memoryVolume = await openVolume(image, "write", "client");
      try {
        // Dirty:Writeback from /proc/meminfo
        expect(await memoryVolume.ioProgress?.()).toMatch(/^\d+:\d+$/);
      } finally {
        await memoryVolume.close();
      }
    } finally {
      await rm(inMemory, { recursive: true, force: true });
    }
  });

  it("answers while every thread of the pool is held by an operation that hangs", async () => {
    // Operations stuck on a hung disk hold libuv's pool threads; the stall check must still read
    // the counters. Opening a FIFO with no writer holds a pool thread the same way.
    const image = join(dir, "pool.img");
    await writeFile(image, randomBytes(MiB));
    const volume = await openVolume(image, "write", "client");
    const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const fifos = Array.from({ length: threads }, (_, i) => join(dir, `hold-${i}`));
    for (const fifo of fifos) execFileSync("mkfifo", [fifo]);
    const held = fifos.map((fifo) => open(fifo, "r"));
    try {
      // Until every pool thread is in the kernel's wait for a FIFO's writer (bounded: 10 s).
      for (let tries = 0; threadsOpeningFifos() < threads && tries < 1_000; tries += 1) await new Promise((r) => setTimeout(r, 10));
      expect(threadsOpeningFifos()).toBe(threads);
      expect(await volume.ioProgress?.()).toMatch(/^\d+:\d+:\d*$/);
    } finally {
      // A writer lets each blocked open through; O_RDWR never blocks on a FIFO, and stays open
      // until every reader is through, even one whose open has not started yet.
      const writers = fifos.map((fifo) => openSync(fifo, constants.O_RDWR));
      for (const handle of await Promise.all(held)) await handle.close();
      for (const fd of writers) closeSync(fd);
      await volume.close();
    }
  });
});
