import { describe, expect, it } from "vitest";
import { Codec, decode, encode, GROUP_VERIFY, LEAF_SIZE, MAX_DATA_LEAVES, Type, VERSION, type Frame } from "../../src/replication/codec.js";
import { ReplicationError } from "../../src/replication/errors.js";
import { digest } from "../../src/replication/leaves.js";

const sha = Buffer.alloc(32, 7);
/** n made-up leaf digests, as DATA carries them. */
const digests = (n: number) => Buffer.alloc(32 * n, n);
const frames: [string, Frame][] = [
  ["HELLO", { type: Type.Hello, version: VERSION, body: { volumes: [{ device: "/dev/xvda", localBytes: 1024 }], throttleMbps: 10 } }],
  ["READY", { type: Type.Ready, body: { volumes: [] } }],
  ["DIGESTS", { type: Type.Digests, volume: 2, batch: 77, first: 2 ** 40, digests: [sha, Buffer.alloc(32, 1)] }],
  ["DATA", { type: Type.Data, volume: 1, leaf: 123456789, count: 1, codec: Codec.Raw, rawLength: LEAF_SIZE, digests: digest(Buffer.alloc(LEAF_SIZE, 9)), payload: Buffer.alloc(LEAF_SIZE, 9) }],
  ["DATA run", { type: Type.Data, volume: 0, leaf: 7, count: 3, codec: Codec.Raw, rawLength: 2 * LEAF_SIZE + 1, digests: digests(3), payload: Buffer.alloc(2 * LEAF_SIZE + 1, 3) }],
  ["DATA brotli, short tail", { type: Type.Data, volume: 0, leaf: 0, count: 2, codec: Codec.Brotli, rawLength: LEAF_SIZE + 512, digests: digests(2), payload: Buffer.alloc(100, 1) }],
  ["ZERO", { type: Type.Zero, volume: 0, leaf: 5, count: 1000 }],
  ["BATCH_DONE", { type: Type.BatchDone, volume: 3, batch: 4 }],
  ["ERROR", { type: Type.Error, body: { code: "TAIL_NOT_ZERO", message: "m" } }],
  ["GROUP", { type: Type.Group, volume: 1, batch: 9, first: 512, count: 256, flags: 0, digest: sha }],
  ["GROUP verify", { type: Type.Group, volume: 1, batch: 9, first: 512, count: 256, flags: GROUP_VERIFY, digest: sha }],
  ["NEED_LEAVES", { type: Type.NeedLeaves, volume: 1, batch: 9 }],
  ["BACKLOG", { type: Type.Backlog, volume: 2, bytes: 3 * 2 ** 40 + 5 }],
  ["THROTTLE", { type: Type.Throttle, mbps: 250 }],
];

function refusal(buf: Buffer): string {
  try {
    decode(buf);
  } catch (error) {
    expect(error).toBeInstanceOf(ReplicationError);
    return (error as ReplicationError).code;
  }
  throw new Error("decoded");
}

describe("codec", () => {
  it.each(frames)("%s round trips", (_, frame) => {
    expect(decode(encode(frame))).toEqual(frame);
  });

  it.each(frames.filter(([name]) => !name.startsWith("DATA")))("%s truncated by one byte is refused, never misread", (name, frame) => {
    const buf = encode(frame);
    expect(refusal(buf.subarray(0, buf.length - 1))).toMatch(name === "HELLO" || name === "READY" || name === "ERROR" ? /^PROTOCOL_/ : /^PROTOCOL_TRUNCATED$/);
  });

  it("a BACKLOG beyond 2^53 bytes is refused, never rounded", () => {
    const buf = encode({ type: Type.Backlog, volume: 0, bytes: 0 });
    buf.writeBigUInt64BE(2n ** 53n + 1n, 2);
    expect(refusal(buf)).toBe("PROTOCOL_MALFORMED");
  });

  it("a DATA frame cut short, or whose payload disagrees with its raw length, is refused", () => {
    const payload = Buffer.alloc(LEAF_SIZE, 9);
    const buf = encode({ type: Type.Data, volume: 0, leaf: 0, count: 1, codec: Codec.Raw, rawLength: LEAF_SIZE, digests: digest(payload), payload });
    expect(refusal(buf.subarray(0, buf.length - 1))).toBe("PROTOCOL_MALFORMED");
    // Cut inside the header, and inside the digests.
    expect(refusal(buf.subarray(0, 16))).toBe("PROTOCOL_TRUNCATED");
    expect(refusal(buf.subarray(0, 40))).toBe("PROTOCOL_TRUNCATED");
    // A compressed payload is only ever sent when smaller than the raw bytes.
    const fat = encode({ type: Type.Data, volume: 0, leaf: 0, count: 1, codec: Codec.Raw, rawLength: 100, digests: digests(1), payload: Buffer.alloc(100) });
    fat[12] = Codec.Brotli;
    expect(refusal(fat)).toBe("PROTOCOL_MALFORMED");
  });

  it("a DATA frame damaged in its bytes still decodes, but no longer matches its leaf's digest", () => {
    // The receiver checks each leaf against its digest immediately before writing it.
    const payload = Buffer.alloc(LEAF_SIZE, 9);
    const buf = encode({ type: Type.Data, volume: 0, leaf: 0, count: 1, codec: Codec.Raw, rawLength: LEAF_SIZE, digests: digest(payload), payload });
    buf.writeUInt8(buf.readUInt8(buf.length - 100) ^ 1, buf.length - 100);
    const damaged = decode(buf) as Extract<Frame, { type: Type.Data }>;
    expect(digest(damaged.payload).equals(damaged.digests)).toBe(false);
  });

  it("refuses to encode a DATA frame whose digests do not match its leaf count", () => {
    expect(() => encode({ type: Type.Data, volume: 0, leaf: 0, count: 2, codec: Codec.Raw, rawLength: LEAF_SIZE + 1, digests: digests(1), payload: Buffer.alloc(LEAF_SIZE + 1) })).toThrow(ReplicationError);
  });

  it("refuses a DATA codec it does not know, and runs of no leaves or too many", () => {
    const payload = Buffer.alloc(10);
    const buf = encode({ type: Type.Data, volume: 0, leaf: 0, count: 1, codec: Codec.Raw, rawLength: 10, digests: digests(1), payload });
    buf[12] = 9;
    expect(refusal(buf)).toBe("PROTOCOL_UNKNOWN_CODEC");
    const none = Buffer.from(buf);
    none[12] = Codec.Raw;
    none.writeUInt16BE(0, 10);
    expect(refusal(none)).toBe("PROTOCOL_MALFORMED");
    none.writeUInt16BE(MAX_DATA_LEAVES + 1, 10);
    expect(refusal(none)).toBe("PROTOCOL_MALFORMED");
  });

  it("refuses another protocol version with a coded error", () => {
    const buf = encode(frames[0]![1]);
    buf.writeUInt16BE(VERSION + 1, 7);
    expect(refusal(buf)).toBe("PROTOCOL_VERSION");
  });

  it("refuses a peer that does not speak the protocol, unknown types, empty and oversized frames", () => {
    expect(refusal(Buffer.from("\x01GET / HTTP/1.1"))).toBe("PROTOCOL_NOT_FAILBACK");
    expect(refusal(Buffer.from([0x42, 1, 2]))).toBe("PROTOCOL_UNKNOWN_TYPE");
    expect(refusal(Buffer.alloc(0))).toBe("PROTOCOL_TRUNCATED");
    expect(refusal(Buffer.concat([encode(frames[3]![1]), Buffer.alloc(1)]))).toBe("PROTOCOL_MALFORMED");
    expect(refusal(Buffer.concat([encode(frames[4]![1]), Buffer.alloc(1)]))).toBe("PROTOCOL_MALFORMED");
    expect(refusal(Buffer.alloc(2 * 2 ** 20))).toBe("PROTOCOL_TOO_LARGE");
    const tooMany = Buffer.alloc(16);
    tooMany[0] = Type.Digests;
    tooMany.writeUInt16BE(5000, 14);
    expect(refusal(tooMany)).toBe("PROTOCOL_TOO_LARGE");
  });

  it("refuses a header that is not a JSON object", () => {
    expect(refusal(Buffer.concat([Buffer.from([Type.Ready]), Buffer.from("[1,2]")]))).toBe("PROTOCOL_MALFORMED");
  });
});
