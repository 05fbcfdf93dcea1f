/*
 * One pass of the client over one connection, for every volume at once.
 *
 * Per volume: read a batch (the next read already under way while this one is hashed), hash its
 * leaves (zero leaves by a compare, never hashed), send one GROUP digest, keep only the 32-byte
 * leaf digests while the batch is in flight (a bounded window of batches). The agent answers a
 * batch with BATCH_DONE, or NEED_LEAVES (then the client sends the leaf DIGESTS), or, when the
 * client's batch is all zeros, directly with the data.
 *
 * Landing: DATA runs are decoded (brotli on the thread pool when compressed), their crc32 checked
 * against the raw bytes immediately before the write, so a frame damaged anywhere on the way never
 * lands; writes and zero runs of a volume go in order, and a batch counts as done only when its
 * writes have landed. Received bytes waiting to land are bounded (Connection pauses the link).
 *
 * A verification pass is the same pass over the batches that received writes, with GROUP_VERIFY:
 * the client reads back and hashes what it wrote (its only hashing of received bytes), the agent
 * compares with the group digest it served, without reading its disk again.
 */
import { crc32 } from "node:zlib";
import { GROUP_VERIFY, LEAF_SIZE, Type, type Frame } from "./codec.js";
import type { Connection } from "./client-connection.js";
import { unpack } from "./compression.js";
import { ReplicationError } from "./errors.js";
import { digestsOf, groupDigest, zeroDigest } from "./leaves.js";
import { Slab } from "./slab.js";
import type { BlockSink } from "./volume-file.js";

export type Phase = "copy" | "verify" | "continuous";

export type ReplicationEvent =
  | { type: "connected"; address: string }
  | {
      type: "progress";
      volume: string;
      phase: Phase;
      totalBytes: number;
      hashedBytes: number;
      sentBytes: number;
      skippedEqualBytes: number;
      skippedZeroBytes: number;
      bytesPerSecond: number;
      etaSeconds?: number;
      lagSeconds?: number;
    }
  | { type: "reconnecting"; attempt: number; delayMs: number; reason: string }
  | { type: "verified"; volume: string; mismatchesRepaired: number }
  | { type: "pass-complete"; pass: number; phase: Phase };

export interface LocalVolume {
  index: number;
  device: string;
  sink: BlockSink;
  size: number;
}

export interface PassCounts {
  sent: number;
  equal: number;
  zero: number;
  /** Bytes the agent sent as zero runs (the local leaf was not zero). */
  zeroWritten: number;
  /** First leaves of the batches that received writes: the only ones a verification must re-read. */
  written: Set<number>;
}

export interface PassSettings {
  batchLeaves: number;
  window: number;
  signal?: AbortSignal;
  onEvent?: (event: ReplicationEvent) => void;
}

interface InFlight {
  first: number;
  digests: Buffer[];
  /** 1 for each leaf the agent answered (DATA or ZERO). */
  answered: Uint8Array;
  done: () => void;
}

const ZEROS = Buffer.alloc(16 * LEAF_SIZE);

export async function runPass(connection: Connection, locals: LocalVolume[], phase: Phase, settings: PassSettings, lagSince: number | undefined, only?: Set<number>[]): Promise<PassCounts[]> {
  const { batchLeaves, window } = settings;
  const started = Date.now();
  // Two batches per volume in memory at most: the one being hashed and the next being read.
  const slab = new Slab(2 * locals.length * batchLeaves * LEAF_SIZE);
  const perVolume = locals.map(() => ({
    counts: { sent: 0, equal: 0, zero: 0, zeroWritten: 0, written: new Set<number>() } as PassCounts,
    hashed: 0,
    landed: Promise.resolve(),
    inFlight: new Map<number, InFlight>(),
  }));

  // What this pass reads of each volume: all of it, or only the batches to verify.
  const totals = locals.map((local, i) => {
    const set = only?.[i];
    if (!set) return local.size;
    let bytes = 0;
    for (const first of set) bytes += Math.max(0, Math.min(batchLeaves * LEAF_SIZE, local.size - first * LEAF_SIZE));
    return bytes;
  });
  const emit = (i: number) => {
    const v = perVolume[i]!;
    const total = totals[i]!;
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? v.hashed / seconds : 0;
    settings.onEvent?.({
      type: "progress",
      volume: locals[i]!.device,
      phase,
      totalBytes: total,
      hashedBytes: v.hashed,
      sentBytes: v.counts.sent,
      skippedEqualBytes: v.counts.equal,
      skippedZeroBytes: v.counts.zero,
      bytesPerSecond: rate,
      etaSeconds: rate > 0 ? (total - v.hashed) / rate : undefined,
      lagSeconds: lagSince === undefined ? undefined : (Date.now() - lagSince) / 1000,
    });
  };
  const malformed = (message: string) => connection.fail(new ReplicationError("PROTOCOL_MALFORMED", `protocol: ${message}`));

  /** The batch in flight that holds leaves leaf..leaf+count-1, or null (and the link failed). */
  const batchOf = (i: number, leaf: number, count: number): InFlight | null => {
    const batch = perVolume[i]!.inFlight.get(Math.floor(leaf / batchLeaves));
    if (!batch || leaf + count > batch.first + batch.digests.length) {
      malformed(`leaves ${leaf}+${count} of volume ${i} are not in a batch in flight`);
      return null;
    }
    for (let k = leaf - batch.first; k < leaf - batch.first + count; k += 1) {
      if (batch.answered[k] === 1) {
        malformed(`leaf ${batch.first + k} of volume ${i} answered twice`);
        return null;
      }
      batch.answered[k] = 1;
    }
    return batch;
  };

  /** Queues a landing step after the volume's earlier ones; a failure fails the connection. */
  const land = (i: number, bytes: number, step: () => Promise<void>) => {
    const v = perVolume[i]!;
    connection.landingAdd(bytes);
    v.landed = v.landed
      .then(() => (connection.failed ? undefined : step()))
      .catch((error: unknown) => connection.fail(error instanceof ReplicationError ? error : new ReplicationError("IO_ERROR", String(error), { cause: error })))
      .finally(() => connection.landingDone(bytes));
  };

  const onData = (frame: Extract<Frame, { type: Type.Data }>) => {
    const local = locals[frame.volume]!;
    const v = perVolume[frame.volume]!;
    const expected = Math.min(frame.count * LEAF_SIZE, local.size - frame.leaf * LEAF_SIZE);
    if (frame.rawLength !== expected) return malformed(`a DATA run of ${frame.rawLength} bytes at leaf ${frame.leaf} of ${local.device}, expected ${expected}`);
    if (!batchOf(frame.volume, frame.leaf, frame.count)) return;
    // Decoding starts now, on the thread pool; the write waits for its turn.
    const raw = unpack(frame.codec, frame.payload, frame.rawLength);
    raw.catch(() => undefined);
    v.counts.sent += frame.rawLength;
    v.counts.written.add(frame.leaf - (frame.leaf % batchLeaves));
    land(frame.volume, frame.payload.length, async () => {
      const bytes = await raw;
      if (crc32(bytes) !== frame.crc32) {
        throw new ReplicationError("CORRUPT_FRAME", `a block run for ${local.device} at leaf ${frame.leaf} failed its checksum; it was not written`);
      }
      await local.sink.write(frame.leaf * LEAF_SIZE, bytes);
    });
  };

  const onZero = (frame: Extract<Frame, { type: Type.Zero }>) => {
    const local = locals[frame.volume]!;
    const v = perVolume[frame.volume]!;
    const end = Math.min((frame.leaf + frame.count) * LEAF_SIZE, local.size);
    if (frame.count < 1 || (frame.leaf + frame.count - 1) * LEAF_SIZE >= local.size) return malformed(`zero run beyond ${local.device}`);
    if (!batchOf(frame.volume, frame.leaf, frame.count)) return;
    const start = frame.leaf * LEAF_SIZE;
    v.counts.zero += end - start;
    v.counts.zeroWritten += end - start;
    v.counts.written.add(frame.leaf - (frame.leaf % batchLeaves));
    land(frame.volume, 0, async () => {
      for (let at = start; at < end; at += ZEROS.length) await local.sink.write(at, ZEROS.subarray(0, Math.min(ZEROS.length, end - at)));
    });
  };

  connection.setHandler((frame) => {
    if (frame.type !== Type.Data && frame.type !== Type.Zero && frame.type !== Type.BatchDone && frame.type !== Type.NeedLeaves) return;
    const v = perVolume[frame.volume];
    if (!v) return malformed(`no volume ${frame.volume}`);
    if (frame.type === Type.Data) return onData(frame);
    if (frame.type === Type.Zero) return onZero(frame);
    const batch = v.inFlight.get(frame.batch);
    if (!batch) return malformed(`unknown batch ${frame.batch}`);
    if (frame.type === Type.NeedLeaves) {
      connection.send({ type: Type.Digests, volume: frame.volume, batch: frame.batch, first: batch.first, digests: batch.digests });
      return;
    }
    v.inFlight.delete(frame.batch);
    // Done once every write the agent sent for it has landed.
    v.landed = v.landed.then(() => batch.done());
  });

  const readBatch = async (local: LocalVolume, first: number): Promise<Buffer> => {
    const length = Math.min(batchLeaves * LEAF_SIZE, local.size - first * LEAF_SIZE);
    const buf = await slab.take(length);
    try {
      return await local.sink.read(first * LEAF_SIZE, length, buf);
    } catch (error) {
      slab.give(buf);
      throw error;
    }
  };

  const volumePass = async (i: number): Promise<PassCounts> => {
    const v = perVolume[i]!;
    const local = locals[i]!;
    const leaves = Math.ceil(local.size / LEAF_SIZE);
    const firsts: number[] = [];
    for (let first = 0; first < leaves; first += batchLeaves) if (!only || only[i]?.has(first)) firsts.push(first);
    const waits: Promise<void>[] = [];
    let next = firsts.length > 0 ? readBatch(local, firsts[0]!) : null;
    for (let n = 0; n < firsts.length; n += 1) {
      settings.signal?.throwIfAborted();
      const first = firsts[n]!;
      const chunk = await next!;
      next = n + 1 < firsts.length ? readBatch(local, firsts[n + 1]!) : null;
      // A failed read-ahead is reported when its turn comes, not as an unhandled rejection.
      next?.catch(() => undefined);
      const digests = digestsOf(chunk);
      const readBytes = chunk.length;
      slab.give(chunk);
      const batch = first / batchLeaves;
      const answered = new Uint8Array(digests.length);
      waits.push(
        new Promise<void>((resolve) => {
          const done = () => {
            // Leaves the agent did not answer were equal; the all-zero ones count as zero.
            for (let k = 0; k < digests.length; k += 1) {
              if (answered[k] === 1) continue;
              const len = Math.min(LEAF_SIZE, local.size - (first + k) * LEAF_SIZE);
              if (digests[k]!.equals(zeroDigest(len))) v.counts.zero += len;
            }
            v.hashed += readBytes;
            emit(i);
            resolve();
          };
          v.inFlight.set(batch, { first, digests, answered, done });
        }),
      );
      if (!connection.send({ type: Type.Group, volume: i, batch, first, count: digests.length, flags: phase === "verify" ? GROUP_VERIFY : 0, digest: groupDigest(digests) })) {
        await Promise.race([connection.ready(), connection.closed()]);
      }
      if (waits.length >= window) await Promise.race([waits.shift()!, connection.closed()]);
    }
    await Promise.race([Promise.all(waits), connection.closed()]);
    await v.landed;
    if (connection.failed) await connection.closed();
    await local.sink.flush();
    // Equal: everything neither sent as data nor zero, known once the pass is complete.
    v.counts.equal = Math.max(0, totals[i]! - v.counts.sent - v.counts.zero);
    emit(i);
    return v.counts;
  };

  return Promise.race([Promise.all(locals.map((_, i) => volumePass(i))), connection.closed()]);
}
