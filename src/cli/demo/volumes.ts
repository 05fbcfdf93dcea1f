/*
 * Sample disks for the demo: deterministic content with the mix a real server has (random data,
 * zero runs, text, repeated patterns), so the demo shows every kind of block the engine handles.
 * AES-CTR over zeros is a fast, seeded stream of incompressible bytes.
 */
import { createCipheriv, createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";

const MiB = 2 ** 20;
const TEXT = Buffer.from(
  "Failback: the Recovery Instance's data comes home. Only the blocks that differ cross the wire.\n".repeat(12_000).slice(0, MiB),
);

function randomChunk(seed: string, index: number): Buffer {
  const key = createHash("sha256").update(seed).digest();
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(index, 12);
  return createCipheriv("aes-256-ctr", key, iv).update(Buffer.alloc(MiB));
}

function patternChunk(index: number): Buffer {
  const unit = Buffer.from(`block ${index.toString(16).padStart(8, "0")} `);
  return Buffer.alloc(MiB, unit);
}

/** The MiB-sized chunk `index` of the volume named by `seed`; undefined means all zeros. */
export function volumeChunk(seed: string, index: number): Buffer | undefined {
  switch (index % 8) {
    case 3:
    case 4:
      return undefined;
    case 5:
      return TEXT;
    case 6:
      return patternChunk(index);
    default:
      return randomChunk(seed, index);
  }
}

/** Writes a volume image of `mib` MiB (zero chunks left sparse). */
export async function writeVolume(path: string, seed: string, mib: number): Promise<void> {
  const file = await open(path, "w");
  try {
    for (let i = 0; i < mib; i += 1) {
      const chunk = volumeChunk(seed, i);
      if (chunk) await file.write(chunk, 0, chunk.length, i * MiB);
    }
    await file.truncate(mib * MiB);
  } finally {
    await file.close();
  }
}

/** Overwrites `count` scattered 64 KiB blocks with other data: what changed since failover. */
export async function changeBlocks(path: string, seed: string, count: number, bytes: number): Promise<void> {
  const block = 64 * 1024;
  const blocks = Math.floor(bytes / block);
  const file = await open(path, "r+");
  try {
    for (let i = 0; i < count; i += 1) {
      const at = (Number(createHash("sha256").update(`${seed}/${i}`).digest().readBigUInt64BE(0) % BigInt(blocks))) * block;
      await file.write(randomChunk(`${seed}/changed`, i).subarray(0, block), 0, block, at);
    }
  } finally {
    await file.close();
  }
}

/** sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
