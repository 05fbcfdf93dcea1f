/* Deterministic incompressible bytes for engine tests: a sha512 chain from a seed. */
import { createHash } from "node:crypto";

export function random(length: number, seed: string): Buffer {
  const out = Buffer.alloc(length);
  let block = createHash("sha512").update(seed).digest();
  for (let at = 0; at < length; at += 64) {
    block.copy(out, at);
    block = createHash("sha512").update(block).digest();
  }
  return out;
}
