import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { equalPass, floorSteps, fullPass, reach, secondsWithoutPwrite } from "../../bench/floor.js";
import { writeImage } from "../../bench/generator.js";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "fb-floor-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const MiB = 2 ** 20;
const LEAF = 64 * 1024;

/** Bytes of the image's leaves that are not all zeros: what the floor must hash, encrypt, write. */
function nonZeroBytes(path: string): number {
  const data = readFileSync(path);
  let n = 0;
  for (let at = 0; at < data.length; at += LEAF) {
    const leaf = data.subarray(at, at + LEAF);
    if (leaf.some((b) => b !== 0)) n += leaf.length;
  }
  return n;
}

function step(r: ReturnType<typeof fullPass>, side: string, name: string) {
  const s = r.steps.find((x) => x.side === side && x.step === name);
  if (s === undefined) throw new Error(`no step ${side} ${name}`);
  return s;
}

describe("bench floor", () => {
  it("counts a full pass's work on the non-zero leaves only, and leaves no scratch file", () => {
    const dir = tempDir();
    const image = join(dir, "m.img");
    // Not a whole number of reads, nor of leaves: the last read and the last leaf are short, and
    // zero here, as is a run of four leaves inside a read, whatever regions the seed planned.
    const size = 24 * MiB + 20 * 4096;
    writeImage(image, { seed: 3, size, profile: "mixed" });
    const fd = openSync(image, "r+");
    writeSync(fd, Buffer.alloc(4 * LEAF), 0, 4 * LEAF, 5 * MiB);
    writeSync(fd, Buffer.alloc(20 * 4096), 0, 20 * 4096, 24 * MiB);
    closeSync(fd);
    const data = nonZeroBytes(image);
    expect(data).toBeGreaterThan(0);
    expect(data).toBeLessThan(size);
    const scratch = join(dir, "scratch.img");
    const r = fullPass(image, scratch);
    expect(existsSync(scratch)).toBe(false);
    expect(r.volumeBytes).toBe(size);
    expect(r.dataBytes).toBe(data);
    expect(step(r, "agent", "read").bytes).toBe(size);
    expect(step(r, "agent", "zero check").bytes).toBe(size);
    for (const [side, name] of [["agent", "BLAKE3"], ["agent", "AES-256-GCM encrypt"], ["client", "AES-256-GCM decrypt"], ["client", "BLAKE3"], ["client", "pwrite"]]) {
      expect(step(r, side!, name!).bytes).toBe(data);
    }
    expect(step(r, "client", "fdatasync").calls).toBe(1);
    expect(r.cpuSeconds).toBeCloseTo(r.steps.reduce((sum, s) => sum + s.cpuSeconds, 0), 9);
    expect(r.cores).toBe(availableParallelism());
    expect(r.seconds).toBeCloseTo(r.cpuSeconds / r.cores, 9);
    expect(secondsWithoutPwrite(r)).toBeCloseTo((r.cpuSeconds - step(r, "client", "pwrite").cpuSeconds) / r.cores, 9);
    expect(floorSteps(r)).toMatch(/^agent [\d.]+ CPU-s: read .*; client [\d.]+ CPU-s: AES-256-GCM decrypt .* fdatasync [\d.]+ CPU-s \(\+ [\d.]+ s waiting on the disk, not counted\)$/);
  });

  it("reads and hashes both sides of identical disks", () => {
    const dir = tempDir();
    const a = join(dir, "a.img");
    const b = join(dir, "b.img");
    writeImage(a, { seed: 4, size: 8 * MiB, profile: "mixed" });
    copyFileSync(a, b);
    const data = nonZeroBytes(a);
    const r = equalPass(a, b);
    expect(r.steps.map((s) => `${s.side} ${s.step}`)).toEqual(["agent read", "agent zero check", "agent BLAKE3", "client read", "client zero check", "client BLAKE3"]);
    expect(secondsWithoutPwrite(r)).toBeUndefined();
    for (const side of ["agent", "client"]) {
      expect(step(r, side, "read").bytes).toBe(8 * MiB);
      expect(step(r, side, "BLAKE3").bytes).toBe(data);
    }
  });

  it("says whether the goal lies below the floor", () => {
    expect(reach(1.5, 1)).toBe("the floor is 1.50x that: out of reach on this machine");
    expect(reach(0.5, 1)).toBe("the floor is 0.50x that: not ruled out by the floor");
  });
});
