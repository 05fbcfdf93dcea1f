/*
 * DATA compression, used only when it pays: LZ4 (lz4-napi) where the CPU is what limits the rate,
 * brotli at quality 1 (Node's zlib, built in) where the wire is; codec-choice.ts measures which.
 * Both give up on random data quickly, while deflate crawls on it.
 *
 * When it pays: the caller decides per frame; on a fast link, compressing would only burn the CPU
 * that hashing and TLS need. A frame is sent compressed only when that saves at least an eighth of
 * its bytes, so incompressible data costs the receiver nothing; after a frame that did not pay,
 * the packer stops trying for a while (doubling, up to MAX_SKIP frames, one batch) so random
 * regions cost the sender little.
 *
 * The work runs on libuv's thread pool (both libraries' async calls), beside the main thread that
 * hashes and encrypts. For brotli, `chunkSize` is the whole frame: with zlib's default (16 KiB)
 * every 16 KiB of output is a round trip between the pool and the main thread, which halves
 * decompression speed.
 *
 * An LZ4 payload is LZ4's block format behind its raw length (u32 little-endian). The length is
 * checked against the frame's before anything is decoded: the decoder allocates what it says.
 * Neither format is a checksum: LZ4 may decode a damaged block to other bytes of the right length.
 * What refuses those is the leaf digests, checked before anything is written (client-pass.ts).
 */
import { promisify } from "node:util";
import { brotliCompress, brotliDecompress, constants } from "node:zlib";
import { compress as lz4Compress, uncompress as lz4Uncompress } from "lz4-napi";
import { Codec } from "./codec.js";
import { ReplicationError } from "./errors.js";

const compress = promisify(brotliCompress);
const decompress = promisify(brotliDecompress);
const MAX_SKIP = 16;
/** log2 of brotli's window: 1 MiB, a whole DATA frame (MAX_DATA_LEAVES x 64 KiB). */
const LGWIN = 20;

/** The codecs this side can encode and decode, cheapest first, by their names in HELLO. */
export const CODEC_NAMES: readonly { name: string; codec: Codec }[] = [
  { name: "lz4", codec: Codec.Lz4 },
  { name: "brotli", codec: Codec.Brotli },
];

function encode(raw: Buffer, codec: Codec): Promise<Buffer> {
  if (codec === Codec.Lz4) return lz4Compress(raw);
  return compress(raw, {
    chunkSize: raw.length + 64,
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 1,
      [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
      // A window as large as a frame and no larger: both ends size their buffers by it, and
      // brotli's default (4 MiB) would cost each compression in flight several MiB for nothing.
      [constants.BROTLI_PARAM_LGWIN]: LGWIN,
    },
  });
}

/**
 * A per-stream packer: remembers, for each codec, whether it has been paying lately. Per codec:
 * data LZ4 cannot shrink by an eighth (text of random letters, with no repeats to find) brotli's
 * entropy coding may, and a trial of brotli must not be judged on frames skipped for LZ4.
 */
export class Packer {
  private readonly lately = new Map<Codec, { skip: number; backoff: number }>();

  /** `codec`: what the link calls for now (codec-choice.ts); Codec.Raw sends the bytes as they are. */
  async pack(raw: Buffer, codec: Codec): Promise<{ codec: Codec; payload: Buffer }> {
    if (codec === Codec.Raw) return { codec: Codec.Raw, payload: raw };
    let state = this.lately.get(codec);
    if (state === undefined) this.lately.set(codec, (state = { skip: 0, backoff: 1 }));
    if (state.skip > 0) {
      state.skip -= 1;
      return { codec: Codec.Raw, payload: raw };
    }
    const packed = await encode(raw, codec);
    if (packed.length <= raw.length - raw.length / 8) {
      state.backoff = 1;
      return { codec, payload: packed };
    }
    state.skip = state.backoff;
    state.backoff = Math.min(MAX_SKIP, state.backoff * 2);
    return { codec: Codec.Raw, payload: raw };
  }
}

/** The raw bytes of a DATA payload; never more than `rawLength` (a hostile stream cannot balloon). */
export async function unpack(codec: Codec, payload: Buffer, rawLength: number): Promise<Buffer> {
  if (codec === Codec.Raw) return payload;
  try {
    if (codec === Codec.Lz4 && (payload.length < 4 || payload.readUInt32LE(0) !== rawLength)) throw new Error(`its length prefix does not say ${rawLength} bytes`);
    const raw = codec === Codec.Lz4 ? await lz4Uncompress(payload) : await decompress(payload, { maxOutputLength: rawLength, chunkSize: Math.max(64, rawLength) });
    if (raw.length !== rawLength) throw new Error(`${raw.length} bytes instead of ${rawLength}`);
    return raw;
  } catch (error) {
    throw new ReplicationError("CORRUPT_FRAME", `a compressed block does not decode: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
