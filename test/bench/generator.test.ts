import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ensureImage, parseSize, planRegions, regionMix, writeImage } from "../../bench/generator.js";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "fb-gen-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const MiB = 2 ** 20;

describe("bench image generator", () => {
  it("writes the same bytes for the same spec, and different bytes for another seed", () => {
    const dir = tempDir();
    const a = writeImage(join(dir, "a.img"), { seed: 7, size: 48 * MiB, profile: "mixed" });
    const b = writeImage(join(dir, "b.img"), { seed: 7, size: 48 * MiB, profile: "mixed" });
    const c = writeImage(join(dir, "c.img"), { seed: 8, size: 48 * MiB, profile: "mixed" });
    expect(a.sha256).toBe(b.sha256);
    expect(c.sha256).not.toBe(a.sha256);
    const onDisk = createHash("sha256").update(readFileSync(join(dir, "a.img"))).digest("hex");
    expect(onDisk).toBe(a.sha256);
    expect(statSync(join(dir, "a.img")).size).toBe(48 * MiB);
  });

  it("plans a mixed image with every region kind, in roughly the intended shares", () => {
    const size = 2 * 2 ** 30;
    const regions = planRegions({ seed: 1, size, profile: "mixed" });
    const mix = regionMix(regions);
    expect(mix.random + mix.zero + mix.text + mix.repeat).toBe(size);
    // Regions tile the image with no gap or overlap, on 4 KiB boundaries.
    let at = 0;
    for (const r of regions) {
      expect(r.offset).toBe(at);
      expect(r.offset % 4096).toBe(0);
      at += r.length;
    }
    for (const share of [mix.random, mix.zero, mix.text, mix.repeat]) expect(share / size).toBeGreaterThan(0.08);
    expect(mix.random / size).toBeGreaterThan(0.2);
  });

  it("fills each region with its kind of data", () => {
    const dir = tempDir();
    const spec = { seed: 3, size: 64 * MiB, profile: "mixed" } as const;
    writeImage(join(dir, "m.img"), spec);
    const data = readFileSync(join(dir, "m.img"));
    const seen = new Set<string>();
    for (const r of planRegions(spec)) {
      const bytes = data.subarray(r.offset, r.offset + Math.min(r.length, 65536));
      const distinct = new Set(bytes).size;
      seen.add(r.kind);
      if (r.kind === "zero") expect(distinct).toBe(1);
      if (r.kind === "random") expect(distinct).toBeGreaterThan(250);
      if (r.kind === "text") expect(/^[a-z0-9 ,.;:\n-]+$/.test(bytes.toString("latin1"))).toBe(true);
    }
    expect(seen.size).toBeGreaterThanOrEqual(3);
  });

  it("reuses a cached image and rewrites a stale one", () => {
    const dir = tempDir();
    const spec = { seed: 5, size: 8 * MiB, profile: "compressible" } as const;
    const first = ensureImage(dir, spec);
    const second = ensureImage(dir, spec);
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.sha256).toBe(first.sha256);
    const other = ensureImage(dir, { ...spec, size: 4 * MiB });
    expect(other.created).toBe(true);
    expect(other.sha256).not.toBe(first.sha256);
  });

  it("reads sizes with binary units and refuses nonsense", () => {
    expect(parseSize("2G")).toBe(2 * 2 ** 30);
    expect(parseSize("512M")).toBe(512 * MiB);
    expect(parseSize("64KiB")).toBe(65536);
    expect(parseSize("4096")).toBe(4096);
    expect(() => parseSize("two gigs")).toThrow(/cannot read size/);
    expect(() => planRegions({ seed: 1, size: 1000, profile: "mixed" })).toThrow(/multiple of 4096/);
  });
});
