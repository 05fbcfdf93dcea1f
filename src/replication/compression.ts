/*
 * DATA compression: brotli at quality 1 (Node's zlib, built in), used only when it pays. Brotli 1
 * compresses text at several hundred MB/s a core and gives up on random data quickly (about 1 GB/s),
 * while deflate crawls on random data; so brotli is the cheap codec here.
 *
 * When it pays: the caller decides per frame (codec-choice.ts measures whether compressing moves more
 * volume per second on this link); on a fast link, compressing would only burn the CPU that hashing
 * and TLS need. A frame is sent compressed only when that saves at least an eighth of its bytes, so
 * incompressible data costs the receiver nothing; after a frame that did not pay, the packer stops
 * trying for a while (doubling, up to MAX_SKIP frames, one batch) so random regions cost the sender
 * little.
 *
 * The work runs on libuv's thread pool (the async zlib calls), beside the main thread that hashes
 * and encrypts. `chunkSize` is the whole frame: with zlib's default (16 KiB) every 16 KiB of output
 * is a round trip between the pool and the main thread, which halves decompression speed.
 *
 * Not LZ4: tried (lz4-napi: 440 MB/s to compress and 3 GB/s to decode here, against brotli's 330
 * and 540), it moved 1.5x more text over the bench's 1 Gbit/s link, but the memory behind its
 * native output buffers stayed with the process: decoding 3,000 frames of 1 MiB took it to
 * 550 MiB, against 108 with brotli, and the bench's client peaked at 400 MiB instead of 200.
 */
import { promisify } from "node:util";
import { brotliCompress, brotliDecompress, constants } from "node:zlib";
import { Codec } from "./codec.js";
import { ReplicationError } from "./errors.js";

const compress = promisify(brotliCompress);
const decompress = promisify(brotliDecompress);
const MAX_SKIP = 16;
/** log2 of brotli's window: 1 MiB, a whole DATA frame (MAX_DATA_LEAVES x 64 KiB). */
const LGWIN = 20;

/** A per-stream packer: remembers whether compression has been paying lately. */
export class Packer {
  private skip = 0;
  private backoff = 1;

  /** `codec`: what the link calls for now (codec-choice.ts); Codec.Raw sends the bytes as they are. */
  async pack(raw: Buffer, codec: Codec): Promise<{ codec: Codec; payload: Buffer }> {
    if (codec === Codec.Raw) return { codec: Codec.Raw, payload: raw };
    if (this.skip > 0) {
      this.skip -= 1;
      return { codec: Codec.Raw, payload: raw };
    }
    const packed = await compress(raw, {
      chunkSize: raw.length + 64,
      params: {
        [constants.BROTLI_PARAM_QUALITY]: 1,
        [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
        // A window as large as a frame and no larger: both ends size their buffers by it, and
        // brotli's default (4 MiB) would cost each compression in flight several MiB for nothing.
        [constants.BROTLI_PARAM_LGWIN]: LGWIN,
      },
    });
    if (packed.length <= raw.length - raw.length / 8) {
      this.backoff = 1;
      return { codec: Codec.Brotli, payload: packed };
    }
    this.skip = this.backoff;
    this.backoff = Math.min(MAX_SKIP, this.backoff * 2);
    return { codec: Codec.Raw, payload: raw };
  }
}

/** The raw bytes of a DATA payload; never more than `rawLength` (a hostile stream cannot balloon). */
export async function unpack(codec: Codec, payload: Buffer, rawLength: number): Promise<Buffer> {
  if (codec === Codec.Raw) return payload;
  try {
    const raw = await decompress(payload, { maxOutputLength: rawLength, chunkSize: Math.max(64, rawLength) });
    if (raw.length !== rawLength) throw new Error(`${raw.length} bytes instead of ${rawLength}`);
    return raw;
  } catch (error) {
    throw new ReplicationError("CORRUPT_FRAME", `a compressed block does not decode: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
