import { describe, expect, it } from "vitest";
import { brotliCompressSync } from "node:zlib";
import { Codec, LEAF_SIZE } from "../../src/replication/codec.js";
import { Packer, unpack } from "../../src/replication/compression.js";
import { ReplicationError } from "../../src/replication/errors.js";
import { digest } from "../../src/replication/leaves.js";
import { random } from "./random-bytes.js";

const MiB = 2 ** 20;

/** A log-like megabyte: compressible several times over, as DATA frames of text are. */
function logLines(bytes: number): Buffer {
  let s = "";
  for (let i = 0; s.length < bytes; i += 1) s += `2026-11-26T03:${String(i % 60).padStart(2, "0")} volume ${i * 7919} replicated block ${i % 97} ok\n`;
  return Buffer.from(s.slice(0, bytes));
}

async function refusal(codec: Codec, payload: Buffer, rawLength: number): Promise<string> {
  const error = await unpack(codec, payload, rawLength).then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(ReplicationError);
  return (error as ReplicationError).code;
}

describe("DATA compression", () => {
  it.each([
    ["LZ4", Codec.Lz4],
    ["brotli", Codec.Brotli],
  ])("%s: text goes compressed, several times smaller, and decodes to the same bytes", async (_name, codec) => {
    const raw = logLines(MiB);
    const packed = await new Packer().pack(raw, codec);
    expect(packed.codec).toBe(codec);
    expect(packed.payload.length).toBeLessThan(raw.length / 3);
    expect((await unpack(packed.codec, packed.payload, raw.length)).equals(raw)).toBe(true);
  });

  it.each([
    ["LZ4", Codec.Lz4],
    ["brotli", Codec.Brotli],
  ])("%s: random data goes raw, and the packer then stops trying for a while", async (_name, codec) => {
    const packer = new Packer();
    const first = await packer.pack(random(MiB, "r1"), codec);
    expect(first.codec).toBe(Codec.Raw);
    expect(first.payload.length).toBe(MiB);
    // Skipped without compressing: even text goes raw for the next frame.
    expect((await packer.pack(logLines(MiB), codec)).codec).toBe(Codec.Raw);
    expect((await packer.pack(logLines(MiB), codec)).codec).toBe(codec);
  });

  it("sends the bytes as they are when the link calls for no codec", async () => {
    const raw = logLines(64 * 1024);
    const packed = await new Packer().pack(raw, Codec.Raw);
    expect(packed).toEqual({ codec: Codec.Raw, payload: raw });
  });

  it("refuses an LZ4 payload whose length prefix is not the frame's, before decoding it", async () => {
    const raw = logLines(MiB);
    const { payload } = await new Packer().pack(raw, Codec.Lz4);
    // A hostile prefix would have the decoder allocate 4 GiB.
    const huge = Buffer.from(payload);
    huge.writeUInt32LE(0xffffffff, 0);
    expect(await refusal(Codec.Lz4, huge, raw.length)).toBe("CORRUPT_FRAME");
    const short = Buffer.from(payload);
    short.writeUInt32LE(raw.length - 1, 0);
    expect(await refusal(Codec.Lz4, short, raw.length)).toBe("CORRUPT_FRAME");
    expect(await refusal(Codec.Lz4, payload.subarray(0, 3), raw.length)).toBe("CORRUPT_FRAME");
  });

  it.each([
    ["LZ4", Codec.Lz4],
    ["brotli", Codec.Brotli],
  ])("%s: a cut payload, or one damaged all through, is refused as a corrupt frame", async (_name, codec) => {
    const raw = logLines(MiB);
    const { payload } = await new Packer().pack(raw, codec);
    const damaged = Buffer.from(payload);
    for (let i = 8; i < damaged.length; i += 5) damaged[i]! ^= 0x5a;
    expect(await refusal(codec, damaged, raw.length)).toBe("CORRUPT_FRAME");
    expect(await refusal(codec, payload.subarray(0, payload.length - 7), raw.length)).toBe("CORRUPT_FRAME");
  });

  it("refuses a brotli payload that would decode past the frame's length", async () => {
    const raw = logLines(MiB);
    expect(await refusal(Codec.Brotli, brotliCompressSync(raw), raw.length - 4096)).toBe("CORRUPT_FRAME");
  });

  it("LZ4 has no checksum: a flipped literal decodes to other bytes, which the leaf's digest refuses", async () => {
    const raw = logLines(LEAF_SIZE);
    const { payload } = await new Packer().pack(raw, Codec.Lz4);
    // After the 4-byte length prefix come the first sequence's token and the extra byte of its
    // literal length (the first literals are longer than 15 bytes): byte 10 is a literal.
    const damaged = Buffer.from(payload);
    damaged[10]! ^= 0x01;
    const decoded = await unpack(Codec.Lz4, damaged, raw.length);
    expect(decoded.length).toBe(raw.length);
    expect(decoded.equals(raw)).toBe(false);
    expect(digest(decoded).equals(digest(raw))).toBe(false);
  });

  it("keeps giving up per codec: data LZ4 cannot shrink is still tried with brotli", async () => {
    // Random letters: no repeats for LZ4 to find, but 4.7 bits a byte for brotli's entropy coding.
    const letters = Buffer.from(random(MiB, "letters").map((b) => 97 + (b % 26)));
    const packer = new Packer();
    expect((await packer.pack(letters, Codec.Lz4)).codec).toBe(Codec.Raw);
    expect((await packer.pack(letters, Codec.Brotli)).codec).toBe(Codec.Brotli);
  });
});
