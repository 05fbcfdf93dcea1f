/*
 * Image files as volumes: a sparse one is scanned with O_DIRECT (volume-file.ts); a scan must
 * return exactly the bytes a buffered read returns, including bytes just written and still dirty in
 * the page cache, and ranges the kernel will not read directly (unaligned).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
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
