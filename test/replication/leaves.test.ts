import { describe, expect, it } from "vitest";
import { LEAF_SIZE } from "../../src/replication/codec.js";
import { digest, groupDigest, hashLeaves, PIECE, readHashed, zeroDigest, zeroGroup } from "../../src/replication/leaves.js";
import { random } from "./random-bytes.js";

describe("leaf digests", () => {
  it("are BLAKE3: the published test vector for \"abc\"", () => {
    // Both ends must agree on the hash; a change of it needs a new protocol version.
    expect(digest(Buffer.from("abc")).toString("hex")).toBe("6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
  });

  it("give a zero leaf the digest of its zeros, without telling it apart from a hashed one", () => {
    const chunk = Buffer.alloc(LEAF_SIZE * 2 + 100);
    chunk[LEAF_SIZE + 7] = 1;
    const { digests, zero } = hashLeaves(chunk);
    expect([...zero]).toEqual([1, 0, 1]);
    expect(digests.map((d) => d.toString("hex"))).toEqual([
      digest(Buffer.alloc(LEAF_SIZE)).toString("hex"),
      digest(chunk.subarray(LEAF_SIZE, 2 * LEAF_SIZE)).toString("hex"),
      digest(Buffer.alloc(100)).toString("hex"),
    ]);
    expect(zeroDigest(100).equals(digests[2]!)).toBe(true);
  });

  it("make a group digest that depends on every leaf digest and their order", () => {
    const a = digest(Buffer.from("a"));
    const b = digest(Buffer.from("b"));
    expect(groupDigest([a, b]).equals(groupDigest([b, a]))).toBe(false);
    expect(groupDigest([a]).equals(groupDigest([a, a]))).toBe(false);
    expect(zeroGroup(3, 100).equals(groupDigest([zeroDigest(LEAF_SIZE), zeroDigest(LEAF_SIZE), zeroDigest(100)]))).toBe(true);
  });
});

describe("readHashed", () => {
  const source = Buffer.concat([random(3 * PIECE + 5 * LEAF_SIZE, "a"), Buffer.alloc(PIECE), random(LEAF_SIZE + 300, "b")]);
  const reader = (data: Buffer, log: { offset: number; length: number }[] = []) => async (offset: number, length: number, into: Buffer) => {
    log.push({ offset, length });
    await new Promise((resolve) => setImmediate(resolve));
    const n = data.copy(into, 0, offset, Math.min(offset + length, data.length));
    return into.subarray(0, n);
  };

  it("reads a piece at a time and gives the digests a whole read would", async () => {
    const log: { offset: number; length: number }[] = [];
    const start = 2 * LEAF_SIZE;
    const length = source.length - start;
    const got = await readHashed(reader(source, log), start, length, Buffer.alloc(length));
    const whole = hashLeaves(source.subarray(start));
    expect(got.chunk.equals(source.subarray(start))).toBe(true);
    expect(got.digests.map((d) => d.toString("hex"))).toEqual(whole.digests.map((d) => d.toString("hex")));
    expect([...got.zero]).toEqual([...whole.zero]);
    expect(log.every((r) => r.length <= PIECE)).toBe(true);
    expect(log.reduce((a, r) => a + r.length, 0)).toBe(length);
  });

  it("ends the chunk at a short read, the end of the source", async () => {
    const got = await readHashed(reader(source.subarray(0, PIECE + 100)), 0, 3 * PIECE, Buffer.alloc(3 * PIECE));
    expect(got.chunk.length).toBe(PIECE + 100);
    expect(got.digests).toHaveLength(PIECE / LEAF_SIZE + 1);
    expect(got.digests.at(-1)!.equals(digest(source.subarray(PIECE, PIECE + 100)))).toBe(true);
  });

  it("fails with the read's error only once no read into the buffer is still running", async () => {
    let running = 0;
    let maxRunning = 0;
    const read = async (offset: number, length: number, into: Buffer) => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      try {
        await new Promise((resolve) => setTimeout(resolve, offset === 0 ? 1 : 20));
        if (offset === 0) throw new Error("EIO at 0");
        return into.subarray(0, length);
      } finally {
        running -= 1;
      }
    };
    await expect(readHashed(read, 0, 4 * PIECE, Buffer.alloc(4 * PIECE))).rejects.toThrow("EIO at 0");
    expect(running).toBe(0);
    expect(maxRunning).toBe(2);
  });
});
