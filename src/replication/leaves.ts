/* Leaf digests: BLAKE3 (256-bit) of each LEAF_SIZE block; an all-zero block is recognised by a
 * compare against a zero buffer (memcmp, tens of GB/s) and its digest comes from a cache, never
 * from hashing.
 *
 * BLAKE3 rather than sha256: both are collision resistant, so data crafted on the Recovery Instance
 * cannot pass for a different local block, but BLAKE3 (native, SIMD) hashes about 4.4 GB/s a core
 * on 64 KiB leaves where Node's sha256 (SHA-NI) does 1.6; hashing is what an identical or nearly
 * identical pair of disks costs, on both sides. */
import { blake3 } from "@napi-rs/blake-hash";
import { LEAF_SIZE } from "./codec.js";

const ZERO_LEAF = Buffer.alloc(LEAF_SIZE);
const zeroDigests = new Map<number, Buffer>();

/** True when every byte is zero; compares a leaf at a time, whatever the length. */
export function isZero(block: Buffer): boolean {
  for (let at = 0; at < block.length; at += LEAF_SIZE) {
    const part = block.subarray(at, at + LEAF_SIZE);
    if (!part.equals(part.length === LEAF_SIZE ? ZERO_LEAF : ZERO_LEAF.subarray(0, part.length))) return false;
  }
  return true;
}

export function digest(block: Buffer): Buffer {
  return blake3(block);
}

/** The digest of `length` zero bytes (cached). */
export function zeroDigest(length: number): Buffer {
  let d = zeroDigests.get(length);
  if (!d) {
    d = digest(ZERO_LEAF.subarray(0, length));
    zeroDigests.set(length, d);
  }
  return d;
}

/** Leaf length at index `leaf` of a region of `size` bytes. */
export function leafLength(leaf: number, size: number): number {
  return Math.min(LEAF_SIZE, size - leaf * LEAF_SIZE);
}

/** A chunk of a volume with the digest of each of its leaves, and which leaves are all zeros. */
export interface HashedChunk {
  chunk: Buffer;
  digests: Buffer[];
  zero: Uint8Array;
}

/** Hashes the leaves of `piece` into `digests` and `zero` from leaf index `at`. */
function hashInto(piece: Buffer, digests: Buffer[], zero: Uint8Array, at: number): void {
  for (let offset = 0, i = at; offset < piece.length; offset += LEAF_SIZE, i += 1) {
    const block = piece.subarray(offset, offset + LEAF_SIZE);
    if (isZero(block)) {
      zero[i] = 1;
      digests[i] = zeroDigest(block.length);
    } else {
      digests[i] = digest(block);
    }
  }
}

/** Digests of every leaf of a chunk. */
export function hashLeaves(chunk: Buffer): HashedChunk {
  const count = Math.ceil(chunk.length / LEAF_SIZE);
  const digests = new Array<Buffer>(count);
  const zero = new Uint8Array(count);
  hashInto(chunk, digests, zero, 0);
  return { chunk, digests, zero };
}

/** Bytes read and hashed at a time by `readHashed`. */
export const PIECE = 16 * LEAF_SIZE;

/**
 * Reads `length` bytes at `offset` into `into` and hashes them, a piece at a time: the next piece's
 * read is under way on the thread pool while this one is hashed on the main thread, and each piece
 * is hashed while the kernel's copy of it is still in the CPU's cache. Reading a whole 16 MiB batch
 * and then hashing it moved every byte through memory twice, with the read and the hash taking
 * turns (a 2 GiB image in the page cache: 1.15 s and 1.18 CPU-s that way, 0.51 s and 0.84 CPU-s in
 * 1 MiB pieces with two reads under way). A short read (the end of the source) ends the chunk there.
 * Returns only once no read into `into` is still running, even when one failed: the caller may then
 * hand the buffer to someone else.
 */
export async function readHashed(read: (offset: number, length: number, into: Buffer) => Promise<Buffer>, offset: number, length: number, into: Buffer): Promise<HashedChunk> {
  const count = Math.ceil(length / LEAF_SIZE);
  const digests = new Array<Buffer>(count);
  const zero = new Uint8Array(count);
  const pieces = Math.ceil(length / PIECE);
  const reads: Promise<Buffer>[] = [];
  const issue = (k: number) => {
    const at = k * PIECE;
    const n = Math.min(PIECE, length - at);
    reads[k] = read(offset + at, n, into.subarray(at, at + n));
    reads[k].catch(() => undefined);
  };
  issue(0);
  if (pieces > 1) issue(1);
  let got = 0;
  try {
    for (let k = 0; k < pieces; k += 1) {
      const piece = await reads[k]!;
      const full = piece.length === Math.min(PIECE, length - k * PIECE);
      if (full && k + 2 < pieces) issue(k + 2);
      hashInto(piece, digests, zero, k * (PIECE / LEAF_SIZE));
      got += piece.length;
      if (!full) break;
    }
  } finally {
    await Promise.allSettled(reads);
  }
  const leaves = Math.ceil(got / LEAF_SIZE);
  return { chunk: into.subarray(0, got), digests: digests.slice(0, leaves), zero: zero.subarray(0, leaves) };
}

/** The digest of a batch: BLAKE3 over its leaf digests, in order. */
export function groupDigest(digests: Buffer[]): Buffer {
  return blake3(digests.length === 1 ? digests[0]! : Buffer.concat(digests));
}

const zeroGroups = new Map<string, Buffer>();

/** The group digest of `count` all-zero leaves whose last one is `lastLength` bytes (cached): a
 * GROUP equal to it says the peer's batch holds only zeros, so no leaf digests need to travel. */
export function zeroGroup(count: number, lastLength: number): Buffer {
  const key = `${count}:${lastLength}`;
  let g = zeroGroups.get(key);
  if (!g) {
    const digests = Array.from({ length: count }, (_, i) => zeroDigest(i === count - 1 ? lastLength : LEAF_SIZE));
    g = groupDigest(digests);
    zeroGroups.set(key, g);
  }
  return g;
}
