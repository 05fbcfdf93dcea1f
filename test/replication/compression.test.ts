import { describe, expect, it } from "vitest";
import { brotliCompressSync } from "node:zlib";
import { Codec } from "../../src/replication/codec.js";
import { Packer, unpack } from "../../src/replication/compression.js";
import { ReplicationError } from "../../src/replication/errors.js";
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
  it("text goes compressed, several times smaller, and decodes to the same bytes", async () => {
    const raw = logLines(MiB);
    const packed = await new Packer().pack(raw, Codec.Brotli);
    expect(packed.codec).toBe(Codec.Brotli);
    expect(packed.payload.length).toBeLessThan(raw.length / 3);
    expect((await unpack(packed.codec, packed.payload, raw.length)).equals(raw)).toBe(true);
  });

  it("random data goes raw, and the packer then stops trying for a while", async () => {
    const packer = new Packer();
    const first = await packer.pack(random(MiB, "r1"), Codec.Brotli);
    expect(first.codec).toBe(Codec.Raw);
    expect(first.payload.length).toBe(MiB);
    // Skipped without compressing: even text goes raw for the next frame.
    expect((await packer.pack(logLines(MiB), Codec.Brotli)).codec).toBe(Codec.Raw);
    expect((await packer.pack(logLines(MiB), Codec.Brotli)).codec).toBe(Codec.Brotli);
  });

  it("sends the bytes as they are when the link calls for no codec", async () => {
    const raw = logLines(64 * 1024);
    const packed = await new Packer().pack(raw, Codec.Raw);
    expect(packed).toEqual({ codec: Codec.Raw, payload: raw });
  });

  it("a cut payload, or one damaged all through, is refused as a corrupt frame", async () => {
    const raw = logLines(MiB);
    const { payload } = await new Packer().pack(raw, Codec.Brotli);
    const damaged = Buffer.from(payload);
    for (let i = 8; i < damaged.length; i += 5) damaged[i]! ^= 0x5a;
    expect(await refusal(Codec.Brotli, damaged, raw.length)).toBe("CORRUPT_FRAME");
    expect(await refusal(Codec.Brotli, payload.subarray(0, payload.length - 7), raw.length)).toBe("CORRUPT_FRAME");
  });

  it("refuses a payload that would decode past the frame's length", async () => {
    const raw = logLines(MiB);
    expect(await refusal(Codec.Brotli, brotliCompressSync(raw), raw.length - 4096)).toBe("CORRUPT_FRAME");
  });
});
