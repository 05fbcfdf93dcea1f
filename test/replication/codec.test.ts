import { describe, expect, it } from "vitest";
import { decode, encode, LEAF_SIZE, Type, VERSION, type Frame } from "../../src/replication/codec.js";
import { ReplicationError } from "../../src/replication/errors.js";
import { digest } from "../../src/replication/leaves.js";

const sha = Buffer.alloc(32, 7);
const frames: [string, Frame][] = [
  ["HELLO", { type: Type.Hello, version: VERSION, body: { volumes: [{ device: "/dev/xvda", localBytes: 1024 }], throttleMbps: 10 } }],
  ["READY", { type: Type.Ready, body: { volumes: [] } }],
  ["DIGESTS", { type: Type.Digests, volume: 2, batch: 77, first: 2 ** 40, digests: [sha, Buffer.alloc(32, 1)] }],
  ["DATA", { type: Type.Data, volume: 1, leaf: 123456789, sha256: sha, payload: Buffer.alloc(LEAF_SIZE, 9) }],
  ["ZERO", { type: Type.Zero, volume: 0, leaf: 5, count: 1000 }],
  ["BATCH_DONE", { type: Type.BatchDone, volume: 3, batch: 4 }],
  ["ERROR", { type: Type.Error, body: { code: "TAIL_NOT_ZERO", message: "m" } }],
  ["GROUP", { type: Type.Group, volume: 1, batch: 9, first: 512, count: 256, digest: sha }],
  ["NEED_LEAVES", { type: Type.NeedLeaves, volume: 1, batch: 9 }],
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

  it.each(frames.filter(([name]) => name !== "DATA"))("%s truncated by one byte is refused, never misread", (name, frame) => {
    const buf = encode(frame);
    expect(refusal(buf.subarray(0, buf.length - 1))).toMatch(name === "HELLO" || name === "READY" || name === "ERROR" ? /^PROTOCOL_/ : /^PROTOCOL_TRUNCATED$/);
  });

  it("a DATA block cut short still decodes, but no longer matches the sha256 it carries", () => {
    // DATA's length is the frame's; the receiver checks the block's size and sha256 before writing.
    const payload = Buffer.alloc(LEAF_SIZE, 9);
    const buf = encode({ type: Type.Data, volume: 0, leaf: 0, sha256: digest(payload), payload });
    const cut = decode(buf.subarray(0, buf.length - 1)) as Extract<Frame, { type: Type.Data }>;
    expect(digest(cut.payload).equals(cut.sha256)).toBe(false);
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
