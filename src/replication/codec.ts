/*
 * The wire format, pure: Buffers in, Buffers out, no sockets. Each WebSocket binary message is one
 * frame: a one-byte type, then fixed fields, then a payload. Every length is bounded and checked;
 * a frame that is truncated, too long, of an unknown type or of another protocol version is
 * refused with a coded error, never misread.
 *
 *   HELLO       0x01 magic "FBSYNC" version:u16 json     client -> agent: volumes, throttle, proof
 *   READY       0x02 json                               agent -> client: volume sizes, proof
 *   DIGESTS     0x03 vol:u8 batch:u32 first:u64 count:u16 count*32-byte BLAKE3 leaf digests
 *   DATA        0x04 vol:u8 leaf:u64 count:u16 codec:u8 rawLength:u32 count*32 payload
 *                                                       1..16 contiguous leaves that differ, each
 *                                                       leaf's BLAKE3 digest, then the payload;
 *                                                       codec 0 = raw, 1 = brotli
 *   ZERO        0x05 vol:u8 leaf:u64 count:u32           a run of leaves that are all zeros
 *   BATCH_DONE  0x06 vol:u8 batch:u32                    every leaf of the batch was answered
 *   ERROR       0x07 json {code, message}
 *   GROUP       0x08 vol:u8 batch:u32 first:u64 count:u16 flags:u8 BLAKE3 of the batch's leaf digests
 *                                                       flag 1: verification, compare with what was served
 *                                                       flag 2: a pass starts here (a pass resumed
 *                                                       after a dropped link may skip leaf 0)
 *   NEED_LEAVES 0x09 vol:u8 batch:u32                    agent -> client: this batch differs
 *   BACKLOG     0x0A vol:u8 bytes:u64                    agent -> client: bytes of the volume written
 *                                                       since the agent last read them (write
 *                                                       tracking); sent only to a client whose HELLO
 *                                                       asks for it ("backlog": true)
 *   THROTTLE    0x0B mbps:u32                            client -> agent: the bandwidth limit changed
 *                                                       (0 = none); HELLO carried the first one
 *
 * Digests are hierarchical: a batch's GROUP digest goes first; only when the agent's differs does
 * it ask for the batch's leaf DIGESTS. Identical disks cost 33 bytes per batch on the wire.
 *
 * Version 2 replaced version 1's one-leaf DATA with its sha256 by runs of leaves with a crc32 and a
 * codec byte: TLS's AEAD already protects the frame in transit, the crc32 catches a frame damaged
 * on either side before it lands, and the digest comparison happens once, in the verification. The
 * codec byte keeps the wire self-describing: a receiver refuses a codec it does not know
 * (PROTOCOL_UNKNOWN_CODEC) instead of writing compressed bytes to disk. Version 3 has
 * BLAKE3 digests instead of sha256 (a version 2 peer would find every batch different, so it is
 * refused instead), and DATA carries the BLAKE3 digest of each of its leaves instead of a crc32:
 * the agent has most of them already, the receiver checks each leaf before it lands as fast as a
 * crc32 would be checked, and a leaf damaged or replaced on the way cannot pass. Version 4 (this
 * one) adds GROUP flag 2, BACKLOG and THROTTLE: a version 3 agent would ignore the flag, so a pass
 * resumed past leaf 0 would not start its pass there (no page-cache drop, no change stamp), and
 * would refuse THROTTLE; it is refused instead.
 */
import { ReplicationError } from "./errors.js";

export const MAGIC = Buffer.from("FBSYNC");
export const VERSION = 4;
export const LEAF_SIZE = 64 * 1024;
export const MAX_BATCH_LEAVES = 1024;
/** Leaves in one DATA frame: 1 MiB, few enough to keep frames small, many enough to amortise them. */
export const MAX_DATA_LEAVES = 16;
export const MAX_JSON = 64 * 1024;
const DATA_HEAD = 17;
export const DIGEST_SIZE = 32;
export const MAX_FRAME = DATA_HEAD + MAX_DATA_LEAVES * (DIGEST_SIZE + LEAF_SIZE);

/** How a DATA payload is encoded; each raw leaf is checked against its digest after decoding. */
export const enum Codec {
  Raw = 0,
  Brotli = 1,
}
const CODECS = new Set<number>([Codec.Raw, Codec.Brotli]);

/** GROUP flags: a verification (compare with what was served), and the first batch of a pass. */
export const GROUP_VERIFY = 1;
export const GROUP_PASS_START = 2;

export const enum Type {
  Hello = 1,
  Ready = 2,
  Digests = 3,
  Data = 4,
  Zero = 5,
  BatchDone = 6,
  Error = 7,
  Group = 8,
  NeedLeaves = 9,
  Backlog = 10,
  Throttle = 11,
}

export type Frame =
  | { type: Type.Hello; version: number; body: Record<string, unknown> }
  | { type: Type.Ready; body: Record<string, unknown> }
  | { type: Type.Digests; volume: number; batch: number; first: number; digests: Buffer[] }
  | { type: Type.Data; volume: number; leaf: number; count: number; codec: Codec; rawLength: number; digests: Buffer; payload: Buffer }
  | { type: Type.Zero; volume: number; leaf: number; count: number }
  | { type: Type.BatchDone; volume: number; batch: number }
  | { type: Type.Error; body: { code: string; message: string } }
  | { type: Type.Group; volume: number; batch: number; first: number; count: number; flags: number; digest: Buffer }
  | { type: Type.NeedLeaves; volume: number; batch: number }
  | { type: Type.Backlog; volume: number; bytes: number }
  | { type: Type.Throttle; mbps: number };

const bad = (code: string, message: string) => new ReplicationError(`PROTOCOL_${code}`, `protocol: ${message}`);

function json(body: unknown): Buffer {
  const text = Buffer.from(JSON.stringify(body));
  if (text.length > MAX_JSON) throw bad("TOO_LARGE", `a ${text.length}-byte header exceeds ${MAX_JSON}`);
  return text;
}

/** Encodes a frame; `alloc` may supply the buffer of a DATA frame (a pool: they are large). */
export function encode(frame: Frame, alloc: (length: number) => Buffer = Buffer.allocUnsafe): Buffer {
  switch (frame.type) {
    case Type.Hello: {
      const head = Buffer.alloc(1 + MAGIC.length + 2);
      head[0] = Type.Hello;
      MAGIC.copy(head, 1);
      head.writeUInt16BE(frame.version, 1 + MAGIC.length);
      return Buffer.concat([head, json(frame.body)]);
    }
    case Type.Ready:
    case Type.Error:
      return Buffer.concat([Buffer.from([frame.type]), json(frame.body)]);
    case Type.Digests: {
      if (frame.digests.length > MAX_BATCH_LEAVES) throw bad("TOO_LARGE", `${frame.digests.length} digests in one batch`);
      const head = Buffer.alloc(16);
      head[0] = Type.Digests;
      head[1] = frame.volume;
      head.writeUInt32BE(frame.batch, 2);
      head.writeBigUInt64BE(BigInt(frame.first), 6);
      head.writeUInt16BE(frame.digests.length, 14);
      return Buffer.concat([head, ...frame.digests]);
    }
    case Type.Data: {
      checkData(frame.count, frame.codec, frame.rawLength, frame.payload.length);
      if (frame.digests.length !== frame.count * DIGEST_SIZE) throw bad("MALFORMED", `${frame.digests.length} bytes of digests for ${frame.count} leaves`);
      const head = DATA_HEAD + frame.digests.length;
      const out = alloc(head + frame.payload.length);
      out[0] = Type.Data;
      out[1] = frame.volume;
      out.writeBigUInt64BE(BigInt(frame.leaf), 2);
      out.writeUInt16BE(frame.count, 10);
      out[12] = frame.codec;
      out.writeUInt32BE(frame.rawLength, 13);
      frame.digests.copy(out, DATA_HEAD);
      frame.payload.copy(out, head);
      return out;
    }
    case Type.Zero: {
      const b = Buffer.alloc(14);
      b[0] = Type.Zero;
      b[1] = frame.volume;
      b.writeBigUInt64BE(BigInt(frame.leaf), 2);
      b.writeUInt32BE(frame.count, 10);
      return b;
    }
    case Type.Group: {
      if (frame.count > MAX_BATCH_LEAVES || frame.digest.length !== 32) throw bad("TOO_LARGE", `a group of ${frame.count} leaves`);
      const head = Buffer.alloc(17);
      head[0] = Type.Group;
      head[1] = frame.volume;
      head.writeUInt32BE(frame.batch, 2);
      head.writeBigUInt64BE(BigInt(frame.first), 6);
      head.writeUInt16BE(frame.count, 14);
      head[16] = frame.flags;
      return Buffer.concat([head, frame.digest]);
    }
    case Type.Backlog: {
      if (!Number.isSafeInteger(frame.bytes) || frame.bytes < 0) throw bad("MALFORMED", `a backlog of ${frame.bytes} bytes`);
      const b = Buffer.alloc(10);
      b[0] = Type.Backlog;
      b[1] = frame.volume;
      b.writeBigUInt64BE(BigInt(frame.bytes), 2);
      return b;
    }
    case Type.Throttle: {
      if (!Number.isInteger(frame.mbps) || frame.mbps < 0 || frame.mbps > 0xffffffff) throw bad("MALFORMED", `a bandwidth limit of ${frame.mbps} Mbps`);
      const b = Buffer.alloc(5);
      b[0] = Type.Throttle;
      b.writeUInt32BE(frame.mbps, 1);
      return b;
    }
    case Type.BatchDone:
    case Type.NeedLeaves: {
      const b = Buffer.alloc(6);
      b[0] = frame.type;
      b[1] = frame.volume;
      b.writeUInt32BE(frame.batch, 2);
      return b;
    }
  }
}

/** DATA's bounds: 1..16 leaves, a raw length those leaves can hold, a known codec, and a payload
 * that is the raw bytes (codec 0) or smaller than them (a codec is used only when it pays). */
function checkData(count: number, codec: number, rawLength: number, payloadLength: number): void {
  if (count < 1 || count > MAX_DATA_LEAVES) throw bad("MALFORMED", `a DATA frame of ${count} leaves`);
  if (rawLength <= (count - 1) * LEAF_SIZE || rawLength > count * LEAF_SIZE) throw bad("MALFORMED", `a DATA frame of ${count} leaves holding ${rawLength} bytes`);
  if (!CODECS.has(codec)) throw bad("UNKNOWN_CODEC", `unknown DATA codec ${codec}`);
  if (codec === Codec.Raw ? payloadLength !== rawLength : payloadLength === 0 || payloadLength >= rawLength) {
    throw bad("MALFORMED", `a DATA payload of ${payloadLength} bytes for ${rawLength} raw bytes (codec ${codec})`);
  }
}

function need(buf: Buffer, length: number, what: string): void {
  if (buf.length < length) throw bad("TRUNCATED", `a ${what} frame of ${buf.length} bytes is truncated`);
}

function parseJson(buf: Buffer, what: string): Record<string, unknown> {
  if (buf.length > MAX_JSON) throw bad("TOO_LARGE", `a ${what} header of ${buf.length} bytes`);
  try {
    const value = JSON.parse(buf.toString("utf8")) as unknown;
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
    return value as Record<string, unknown>;
  } catch {
    throw bad("MALFORMED", `the ${what} header is not a JSON object`);
  }
}

const u64 = (buf: Buffer, at: number) => {
  const v = buf.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad("MALFORMED", "an offset beyond 2^53");
  return Number(v);
};

export function decode(buf: Buffer): Frame {
  if (buf.length > MAX_FRAME + MAX_JSON) throw bad("TOO_LARGE", `a frame of ${buf.length} bytes`);
  need(buf, 1, "empty");
  switch (buf[0]) {
    case Type.Hello: {
      need(buf, 1 + MAGIC.length + 2, "HELLO");
      if (!buf.subarray(1, 1 + MAGIC.length).equals(MAGIC)) throw bad("NOT_FAILBACK", "the peer does not speak this protocol");
      const version = buf.readUInt16BE(1 + MAGIC.length);
      if (version !== VERSION) throw new ReplicationError("PROTOCOL_VERSION", `protocol: the peer speaks version ${version}, this side ${VERSION}: use the same release on both ends`);
      return { type: Type.Hello, version, body: parseJson(buf.subarray(1 + MAGIC.length + 2), "HELLO") };
    }
    case Type.Ready:
      return { type: Type.Ready, body: parseJson(buf.subarray(1), "READY") };
    case Type.Error: {
      const body = parseJson(buf.subarray(1), "ERROR");
      return { type: Type.Error, body: { code: String(body.code ?? "PEER_ERROR"), message: String(body.message ?? "") } };
    }
    case Type.Digests: {
      need(buf, 16, "DIGESTS");
      const count = buf.readUInt16BE(14);
      if (count > MAX_BATCH_LEAVES) throw bad("TOO_LARGE", `${count} digests in one batch`);
      if (buf.length !== 16 + count * 32) throw bad("TRUNCATED", `a DIGESTS frame of ${buf.length} bytes for ${count} digests`);
      const digests = Array.from({ length: count }, (_, i) => buf.subarray(16 + i * 32, 48 + i * 32));
      return { type: Type.Digests, volume: buf[1]!, batch: buf.readUInt32BE(2), first: u64(buf, 6), digests };
    }
    case Type.Data: {
      need(buf, DATA_HEAD, "DATA");
      const count = buf.readUInt16BE(10);
      const codec = buf[12]!;
      const rawLength = buf.readUInt32BE(13);
      if (count < 1 || count > MAX_DATA_LEAVES) throw bad("MALFORMED", `a DATA frame of ${count} leaves`);
      const head = DATA_HEAD + count * DIGEST_SIZE;
      need(buf, head, "DATA");
      const payload = buf.subarray(head);
      checkData(count, codec, rawLength, payload.length);
      return { type: Type.Data, volume: buf[1]!, leaf: u64(buf, 2), count, codec, rawLength, digests: buf.subarray(DATA_HEAD, head), payload };
    }
    case Type.Zero:
      if (buf.length !== 14) throw bad("TRUNCATED", `a ZERO frame of ${buf.length} bytes`);
      return { type: Type.Zero, volume: buf[1]!, leaf: u64(buf, 2), count: buf.readUInt32BE(10) };
    case Type.BatchDone:
    case Type.NeedLeaves:
      if (buf.length !== 6) throw bad("TRUNCATED", `a ${buf[0] === Type.BatchDone ? "BATCH_DONE" : "NEED_LEAVES"} frame of ${buf.length} bytes`);
      return { type: buf[0] === Type.BatchDone ? Type.BatchDone : Type.NeedLeaves, volume: buf[1]!, batch: buf.readUInt32BE(2) };
    case Type.Group: {
      if (buf.length !== 49) throw bad("TRUNCATED", `a GROUP frame of ${buf.length} bytes`);
      const count = buf.readUInt16BE(14);
      if (count > MAX_BATCH_LEAVES) throw bad("TOO_LARGE", `a group of ${count} leaves`);
      return { type: Type.Group, volume: buf[1]!, batch: buf.readUInt32BE(2), first: u64(buf, 6), count, flags: buf[16]!, digest: buf.subarray(17, 49) };
    }
    case Type.Backlog:
      if (buf.length !== 10) throw bad("TRUNCATED", `a BACKLOG frame of ${buf.length} bytes`);
      return { type: Type.Backlog, volume: buf[1]!, bytes: u64(buf, 2) };
    case Type.Throttle:
      if (buf.length !== 5) throw bad("TRUNCATED", `a THROTTLE frame of ${buf.length} bytes`);
      return { type: Type.Throttle, mbps: buf.readUInt32BE(1) };
    default:
      throw bad("UNKNOWN_TYPE", `unknown message type ${buf[0]}`);
  }
}
