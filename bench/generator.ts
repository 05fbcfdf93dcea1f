/**
 * Deterministic disk images for the benchmark.
 *
 * An image is a sequence of regions (random, zero, text, repeated pattern), 4 KiB aligned, planned
 * from a seeded PRNG: the same {seed, size, profile} always gives the same bytes, on any machine,
 * whatever the chunking, so a figure can be re-measured against the very same data.
 *
 * - random regions are an AES-256-CTR keystream whose counter is the byte offset / 16: incompressible,
 *   fast to make (OpenSSL), and independent of how the region is cut into chunks;
 * - text regions are words, numbers and punctuation drawn from the PRNG (compressible about 3x);
 * - repeat regions are a short pattern with a record counter, like database pages or log records;
 * - zero regions are real zero bytes, as on a used disk.
 *
 * Images are cached (writeImage -> ensureImage): a marker file beside the image records the spec and
 * the image's sha256, and an image is only reused when the marker matches.
 */
import { createCipheriv, createHash } from "node:crypto";
import { closeSync, fsyncSync, ftruncateSync, openSync, readFileSync, renameSync, writeFileSync, writeSync, mkdirSync } from "node:fs";
import { join } from "node:path";

export type RegionKind = "random" | "zero" | "text" | "repeat";
export type ImageProfile = "mixed" | "random" | "compressible";

export interface ImageSpec {
  readonly seed: number;
  readonly size: number;
  readonly profile: ImageProfile;
}

export interface Region {
  readonly kind: RegionKind;
  readonly offset: number;
  readonly length: number;
  /** Seed of this region's own PRNG (text and repeat). */
  readonly seed: number;
}

export interface CachedImage {
  readonly path: string;
  readonly sha256: string;
  readonly spec: ImageSpec;
  readonly regions: readonly Region[];
  /** True when the image was written by this call, false when it came from the cache. */
  readonly created: boolean;
}

/** Bumped whenever the bytes produced for a spec change, so stale cache entries are rewritten. */
export const GENERATOR_VERSION = 1;

const ALIGN = 4096;
const MIN_REGION = 64 * 1024;
const MAX_REGION = 32 * 1024 * 1024;
const CHUNK = 4 * 1024 * 1024;

/** Share of bytes per region kind, per profile. */
const MIX: Record<ImageProfile, ReadonlyArray<readonly [RegionKind, number]>> = {
  mixed: [["random", 0.35], ["zero", 0.25], ["text", 0.25], ["repeat", 0.15]],
  random: [["random", 1]],
  compressible: [["text", 0.6], ["repeat", 0.4]],
};

/** sfc32: small, fast, good enough for layout and text; not for anything secret. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.next();
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  /** A uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.float() * n);
  }
}

/** Parses "2G", "512M", "64k", "2GiB" or a plain byte count; sizes are powers of 1024. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (m === null) throw new Error(`bench: cannot read size "${text}" (use e.g. 2G, 512M, 1048576)`);
  const unit = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[(m[2] ?? "").toLowerCase()] ?? 1;
  return Math.round(Number(m[1]) * unit);
}

/** Plans the regions of an image: pure, deterministic in the spec. */
export function planRegions(spec: ImageSpec): Region[] {
  if (!Number.isSafeInteger(spec.size) || spec.size <= 0 || spec.size % ALIGN !== 0) {
    throw new Error(`bench: image size must be a positive multiple of ${ALIGN} bytes, got ${spec.size}`);
  }
  const prng = new Prng(spec.seed ^ 0x5eed1e55);
  const mix = MIX[spec.profile];
  const regions: Region[] = [];
  let offset = 0;
  let previous: RegionKind | undefined;
  while (offset < spec.size) {
    let kind = pick(mix, prng.float());
    // Two zero regions in a row are one zero region; redraw once so the mix stays varied.
    if (kind === previous && mix.length > 1) kind = pick(mix, prng.float());
    // Log-uniform sizes: many small regions and a few large ones, as on a used file system.
    const raw = Math.exp(Math.log(MIN_REGION) + prng.float() * (Math.log(MAX_REGION) - Math.log(MIN_REGION)));
    const length = Math.min(spec.size - offset, Math.max(ALIGN, Math.floor(raw / ALIGN) * ALIGN));
    regions.push({ kind, offset, length, seed: prng.next() });
    offset += length;
    previous = kind;
  }
  return regions;
}

function pick(mix: ReadonlyArray<readonly [RegionKind, number]>, x: number): RegionKind {
  let acc = 0;
  for (const [kind, share] of mix) {
    acc += share;
    if (x < acc) return kind;
  }
  const last = mix[mix.length - 1];
  if (last === undefined) throw new Error("bench: empty region mix");
  return last[0];
}

const WORDS = ("the of and to in is was for on that with as by at from this be are or an it not which have " +
  "replication volume block device server recovery instance failback disk agent client network data " +
  "kernel config error warning info debug started stopped request response user system service " +
  "timeout retry connected session update install package version file directory mount sector " +
  "partition filesystem journal inode checksum write read flush commit transaction table index")
  .split(" ").map((w) => Buffer.from(w, "latin1"));
const PUNCT = [", ", ". ", ".\n", " - ", ": ", "; "].map((p) => Buffer.from(p, "latin1"));

/** Produces the bytes of one region in chunks of at most CHUNK bytes, in order. */
export function* regionChunks(region: Region, key: Buffer): Generator<Buffer> {
  switch (region.kind) {
    case "zero": {
      const zero = Buffer.alloc(Math.min(CHUNK, region.length));
      for (let done = 0; done < region.length; done += zero.length) {
        yield zero.subarray(0, Math.min(zero.length, region.length - done));
      }
      return;
    }
    case "random": {
      const iv = Buffer.alloc(16);
      // Counter = absolute offset / 16, so the keystream at a byte depends only on where it is.
      iv.writeBigUInt64BE(BigInt(region.offset / 16), 8);
      const cipher = createCipheriv("aes-256-ctr", key, iv);
      const zero = Buffer.alloc(Math.min(CHUNK, region.length));
      for (let done = 0; done < region.length; done += zero.length) {
        yield cipher.update(zero.subarray(0, Math.min(zero.length, region.length - done)));
      }
      return;
    }
    case "text": {
      const prng = new Prng(region.seed);
      for (let done = 0; done < region.length;) {
        const n = Math.min(CHUNK, region.length - done);
        yield textChunk(prng, n);
        done += n;
      }
      return;
    }
    case "repeat": {
      const prng = new Prng(region.seed);
      const patternLength = 16 + prng.below(4096 - 16);
      const pattern = Buffer.alloc(patternLength);
      for (let i = 0; i < patternLength; i++) pattern[i] = prng.below(256);
      let record = 0;
      for (let done = 0; done < region.length;) {
        const n = Math.min(CHUNK, region.length - done);
        const out = Buffer.allocUnsafe(n);
        let at = 0;
        while (at < n) {
          // Each record starts with its number, so blocks differ like real records do.
          pattern.writeUInt32LE(record++ >>> 0, 0);
          at += pattern.copy(out, at, 0, Math.min(patternLength, n - at));
        }
        yield out;
        done += n;
      }
      return;
    }
  }
}

function textChunk(prng: Prng, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let at = 0;
  while (at < n) {
    const r = prng.next();
    const word = (r & 15) === 0 ? Buffer.from(String(r >>> 12), "latin1") : WORDS[(r >>> 4) % WORDS.length];
    const sep = ((r >>> 24) & 7) === 0 ? PUNCT[(r >>> 27) % PUNCT.length] : undefined;
    if (word !== undefined) at += word.copy(out, at);
    if (at < n) at += sep !== undefined ? sep.copy(out, at) : (out[at] = 0x20, 1);
  }
  return out;
}

/** The AES key of a seed's random regions. */
export function randomKey(seed: number): Buffer {
  return createHash("sha256").update(`failback-bench:${seed}`).digest();
}

/** Writes an image (and returns its sha256); the caller decides where. */
export function writeImage(path: string, spec: ImageSpec, onProgress?: (written: number) => void): { sha256: string; regions: Region[] } {
  const regions = planRegions(spec);
  const key = randomKey(spec.seed);
  const hash = createHash("sha256");
  const fd = openSync(path, "w");
  try {
    ftruncateSync(fd, 0);
    let position = 0;
    let reported = 0;
    for (const region of regions) {
      for (const chunk of regionChunks(region, key)) {
        hash.update(chunk);
        for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off, chunk.length - off, position + off);
        position += chunk.length;
        if (onProgress !== undefined && position - reported >= 256 * 2 ** 20) {
          onProgress(position);
          reported = position;
        }
      }
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { sha256: hash.digest("hex"), regions };
}

interface Marker extends ImageSpec {
  version: number;
  sha256: string;
}

/** Returns the cached image for a spec, writing it first when it is missing or stale. */
export function ensureImage(cacheDir: string, spec: ImageSpec, onProgress?: (written: number) => void): CachedImage {
  mkdirSync(cacheDir, { recursive: true });
  const name = `${spec.profile}-s${spec.seed}-${spec.size}`;
  const path = join(cacheDir, `${name}.img`);
  const markerPath = join(cacheDir, `${name}.json`);
  try {
    const marker = JSON.parse(readFileSync(markerPath, "utf8")) as Partial<Marker>;
    if (marker.version === GENERATOR_VERSION && marker.seed === spec.seed && marker.size === spec.size &&
        marker.profile === spec.profile && typeof marker.sha256 === "string") {
      return { path, sha256: marker.sha256, spec, regions: planRegions(spec), created: false };
    }
  } catch {
    // No marker (or a broken one): the image is (re)written below.
  }
  const partial = `${path}.partial`;
  const { sha256, regions } = writeImage(partial, spec, onProgress);
  renameSync(partial, path);
  const marker: Marker = { version: GENERATOR_VERSION, ...spec, sha256 };
  writeFileSync(markerPath, `${JSON.stringify(marker)}\n`);
  return { path, sha256, spec, regions, created: true };
}

/** Bytes per region kind of a plan. */
export function regionMix(regions: readonly Region[]): Record<RegionKind, number> {
  const mix: Record<RegionKind, number> = { random: 0, zero: 0, text: 0, repeat: 0 };
  for (const r of regions) mix[r.kind] += r.length;
  return mix;
}
