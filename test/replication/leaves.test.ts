import { describe, expect, it } from "vitest";
import { LEAF_SIZE } from "../../src/replication/codec.js";
import { digest, digestsOf, groupDigest, zeroDigest, zeroGroup } from "../../src/replication/leaves.js";

describe("leaf digests", () => {
  it("are BLAKE3: the published test vector for \"abc\"", () => {
    // Both ends must agree on the hash; a change of it needs a new protocol version.
    expect(digest(Buffer.from("abc")).toString("hex")).toBe("6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
  });

  it("give a zero leaf the digest of its zeros, without telling it apart from a hashed one", () => {
    const chunk = Buffer.alloc(LEAF_SIZE * 2 + 100);
    chunk[LEAF_SIZE + 7] = 1;
    const digests = digestsOf(chunk);
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
