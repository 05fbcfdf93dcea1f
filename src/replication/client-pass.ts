/*
 * One pass of the client over one connection, for every volume at once.
 *
 * Per volume: read a batch (the next read already under way while this one is hashed), hash its
 * leaves (zero leaves by a compare, never hashed), send one GROUP digest, keep only the 32-byte
 * leaf digests while the batch is in flight (a bounded window of batches). The agent answers a
 * batch with BATCH_DONE, or NEED_LEAVES (then the client sends the leaf DIGESTS), or, when the
 * client's batch is all zeros, directly with the data.
 *
 * Landing: DATA runs are decoded (brotli on the thread pool when compressed), and each leaf checked
 * against the digest the agent sent with it immediately before the write, so a frame damaged
 * anywhere on the way never lands; writes and zero runs of a volume go in order, and a batch
 * counts as done only when its writes have landed. Received bytes waiting to land are bounded
 * (Connection pauses the link).
 *
 * Verification runs inside the pass. Each write is read back as soon as it has landed and compared
 * with the bytes written: where they are the same, the leaf's digest is the one it was checked
 * against before the write (a compare instead of a second hash of every byte received); where they
 * differ, it is the digest of what the disk returned. Once a batch's writes have landed, a second
 * lane sends the batch's GROUP of those digests (the other leaves' are those the copy lane
 * computed, of bytes the pass did not write) with GROUP_VERIFY; the agent compares with the group
 * digest it served, without reading its disk again.
 * Anything it still sends is a mismatch: written (repaired), counted, and listed for another check.
 * A pass in phase "verify" (over the batches listed) is made of such GROUPs only.
 *
 * Known batches: in continuous replication only this client writes its disks, so a batch found
 * equal at the end of one pass still holds what it held then. The caller passes those batches'
 * group digests (`known`) to the next pass, which sends them without reading the disk; only when
 * the agent's batch differs (NEED_LEAVES) is the batch read and hashed for its leaf digests. A
 * write to a batch removes it from `known` before it lands. Each pass returns the group digests
 * it found equal (`PassCounts.equalGroups`).
 */
import { BatchLayout } from "./batches.js";
import { DIGEST_SIZE, GROUP_PASS_START, GROUP_VERIFY, LEAF_SIZE, Type, type Frame } from "./codec.js";
import type { Connection } from "./client-connection.js";
import { unpack } from "./compression.js";
import { withinStall } from "./disk-stall.js";
import { ReplicationError } from "./errors.js";
import { digest, groupDigest, isZero, readHashed, zeroDigest } from "./leaves.js";
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
      /** Continuous replication, where the agent follows writes: bytes written there and not read yet. */
      backlogBytes?: number;
    }
  | { type: "reconnecting"; attempt: number; delayMs: number; reason: string }
  /** After each pass and its verification: the leaves of this volume found different and repaired. */
  | { type: "verified"; volume: string; mismatchesRepaired: number }
  | { type: "pass-complete"; pass: number; phase: Phase }
  /** The bandwidth limit changed while replicating (0 = none); the agent applies it at once. */
  | { type: "throttle"; mbps: number };

export interface LocalVolume {
  index: number;
  device: string;
  sink: BlockSink;
  /** Bytes replicated: the smaller of the local disk and the recovery volume. */
  size: number;
  /** The recovery volume's size as the plan knows it (DRS); the agent must serve exactly that. */
  recoveryBytes: number;
  /**
   * The first failed background flush. Linux reports a writeback error to an open file once, so a
   * later fdatasync on it succeeds while the pages that failed are marked clean and read back
   * fine from the cache: kept here, it fails every pass that ends on this disk.
   */
  flushError?: unknown;
  /** Reads, writes and flushes started on the sink and not yet settled (a stalled one never is). */
  pending?: number;
}

export interface PassCounts {
  sent: number;
  equal: number;
  zero: number;
  /** Bytes the agent sent as zero runs (the local leaf was not zero). */
  zeroWritten: number;
  /** First leaves of the batches that received writes (in a "verify" pass: repairs). */
  written: Set<number>;
  /** Leaves found different by the verification, and rewrote: the in-pass one, or a "verify" pass. */
  repairedLeaves: number;
  /** First leaves of the batches those repairs went to: they need checking again. */
  repaired: Set<number>;
  /** Group digests of the batches this pass found equal to the agent's (after any writes). */
  equalGroups: Map<number, Buffer>;
}

/**
 * What one pass has done so far, kept across the attempts of it that a dropped link cut short: the
 * next attempt skips the batches already finished, and the counts add up over all attempts (data
 * sent again after a fault counts again).
 */
export interface PassProgress {
  counts: PassCounts[];
  /** First leaves of each volume's batches finished in this pass: compared equal, or written and
   * checked (a repair among them is in `counts.repaired`, for the verification passes). */
  settled: Set<number>[];
  /** Bytes each volume's scanned batches cover, for progress events; each batch once, however
   * many attempts scanned it (`scanned`), or a resumed pass would show 100% with work to come. */
  hashed: number[];
  scanned: Set<number>[];
  /** Leaves each volume's verification rewrote in this pass, counted as they land: a repair whose
   * answer a dropped link cut off is still a disk that did not keep a write. */
  repairs: Set<number>[];
}

export function startProgress(volumes: number): PassProgress {
  return {
    counts: Array.from({ length: volumes }, () => ({ sent: 0, equal: 0, zero: 0, zeroWritten: 0, written: new Set<number>(), repairedLeaves: 0, repaired: new Set<number>(), equalGroups: new Map<number, Buffer>() })),
    settled: Array.from({ length: volumes }, () => new Set<number>()),
    hashed: new Array<number>(volumes).fill(0),
    scanned: Array.from({ length: volumes }, () => new Set<number>()),
    repairs: Array.from({ length: volumes }, () => new Set<number>()),
  };
}

/** Batches finished so far, over all volumes: a retry that adds to it made progress. */
export function settledCount(progress: PassProgress): number {
  return progress.settled.reduce((a, set) => a + set.size, 0);
}

export interface PassSettings {
  batchLeaves: number;
  window: number;
  /** Read buffers, kept across passes (their arena is page-aligned for direct reads: aligned.ts);
   * three batches per volume. A pass makes its own when none is given. */
  slab?: Slab;
  /** Silence from the agent, while it owes answers, after which the link is dropped (Connection.watch);
   * also the time a local read, write or flush may take before the disk counts as stalled (disk-stall.ts). */
  stallMs?: number;
  signal?: AbortSignal;
  onEvent?: (event: ReplicationEvent) => void;
}

interface InFlight {
  /** The batch id on the wire: its first leaf, with VERIFY_ID set in the verification lane. */
  id: number;
  /** Whether its answers count as the pass's data (not as repairs found by in-pass verification). */
  counted: boolean;
  first: number;
  /** Leaves in the batch. */
  count: number;
  /** Their digests; null for a known batch until the agent asks for them (NEED_LEAVES). */
  digests: Buffer[] | null;
  /** 1 for each leaf the agent answered (DATA or ZERO). */
  answered: Uint8Array;
  /** For each answered leaf once its write landed: the digest of what reading it back returned. */
  landed: Buffer[];
  done: () => void;
  /** The agent asked for its leaf digests and this side is still reading them: the wait is ours. */
  ours?: boolean;
  /** Bytes of the batch found equal, and zero (on both sides, or sent as a zero run): they count
   * once the batch is settled, so a batch done again after a dropped link counts once. */
  equal: number;
  zero: number;
}

const ZEROS = Buffer.alloc(16 * LEAF_SIZE);
/** Written bytes after which a flush starts in the background: the kernel would otherwise hold
 * every written byte dirty until the pass's final fdatasync, which then waits for all of them. */
const FLUSH_EVERY = 64 * 2 ** 20;
/** Batches in flight per volume in all, known ones included (see `lane`); the agent keeps at most
 * 256 batches a volume waiting for leaf digests. */
const KNOWN_WINDOW = 64;
/** Two minutes without a frame while answers are owed: far beyond a slow disk's read of a batch
 * (16 MiB) or a throttled link's frame, and still minutes rather than for ever. */
export const STALL_MS = 120_000;
/** Batch ids of the verification lane: the same first leaf with the top bit set, so answers cannot mix. */
const VERIFY_ID = 0x80000000;

/**
 * Runs (the rest of) a pass: `progress` carries what earlier attempts of it finished, and collects
 * what this one does as it goes, so that it still holds it when the link drops.
 */
export async function runPass(connection: Connection, locals: LocalVolume[], phase: Phase, settings: PassSettings, lagSince: number | undefined, only?: Set<number>[], known?: Map<number, Buffer>[], progress: PassProgress = startProgress(locals.length)): Promise<PassCounts[]> {
  const { batchLeaves, window } = settings;
  const started = Date.now();
  const slab = settings.slab ?? passSlab(locals.length, batchLeaves);
  const perVolume = locals.map((_, i) => ({
    counts: progress.counts[i]!,
    settled: progress.settled[i]!,
    landed: Promise.resolve(),
    /** Bytes written since the last flush was started, and that flush (at most one at a time). */
    unflushed: 0,
    flushing: null as Promise<void> | null,
    inFlight: new Map<number, InFlight>(),
    /** The agent's latest BACKLOG for the volume. */
    backlog: undefined as number | undefined,
  }));

  const layouts = locals.map((local) => new BatchLayout(Math.ceil(local.size / LEAF_SIZE), batchLeaves));
  // What this pass reads of each volume: all of it, or only the batches to verify.
  const totals = locals.map((local, i) => {
    const set = only?.[i];
    if (!set) return local.size;
    let bytes = 0;
    for (const first of set) bytes += Math.max(0, Math.min(layouts[i]!.length(first) * LEAF_SIZE, local.size - first * LEAF_SIZE));
    return bytes;
  });
  /** This attempt's scanning rate counts only what it hashed itself. */
  const hashedBefore = [...progress.hashed];
  const emit = (i: number) => {
    const v = perVolume[i]!;
    const total = totals[i]!;
    // A batch scanned by an attempt that then failed is scanned again: never more than the total.
    const hashed = Math.min(total, progress.hashed[i]!);
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? (progress.hashed[i]! - hashedBefore[i]!) / seconds : 0;
    settings.onEvent?.({
      type: "progress",
      volume: locals[i]!.device,
      phase,
      totalBytes: total,
      hashedBytes: hashed,
      sentBytes: v.counts.sent,
      skippedEqualBytes: v.counts.equal,
      skippedZeroBytes: v.counts.zero,
      bytesPerSecond: rate,
      etaSeconds: rate > 0 ? (total - hashed) / rate : undefined,
      lagSeconds: lagSince === undefined ? undefined : (Date.now() - lagSince) / 1000,
      backlogBytes: phase === "continuous" ? v.backlog : undefined,
    });
  };
  const malformed = (message: string) => connection.fail(new ReplicationError("PROTOCOL_MALFORMED", `protocol: ${message}`));

  /** The batch in flight that holds leaves leaf..leaf+count-1, or null (and the link failed). */
  const batchOf = (i: number, leaf: number, count: number): InFlight | null => {
    const batch = perVolume[i]!.inFlight.get(layouts[i]!.start(leaf));
    if (!batch || leaf + count > batch.first + batch.count) {
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
    // What the caller knew of this batch no longer holds once a write lands in it.
    known?.[i]?.delete(batch.first);
    return batch;
  };

  /**
   * The first failure of a local disk in this attempt. It ends the attempt whatever the link did:
   * after a drop, a retry would write the same bytes again and hide a disk that failed a write.
   */
  let diskFault: ReplicationError | undefined;
  const onDisk = (error: unknown): ReplicationError => {
    const e = error instanceof ReplicationError ? error : new ReplicationError("IO_ERROR", String(error), { cause: error });
    diskFault ??= e;
    return e;
  };

  /**
   * The local disk's reads, writes and flushes, each bounded by the stall limit and counted while
   * under way (`pending`: the run's end must not wait to close a disk with one still in the kernel).
   * A stall ends the run: the slab is closed too, since buffers lent to reads that may never return
   * are gone, and a read-back waiting for one would hold the run's end for ever.
   */
  const stallMs = settings.stallMs ?? STALL_MS;
  /** The disk operations under way, bounded: an attempt that fails waits for them to settle. */
  const underway = new Set<Promise<unknown>>();
  const bounded = <T>(local: LocalVolume, work: Promise<T>, where: () => string): Promise<T> => {
    local.pending = (local.pending ?? 0) + 1;
    const settle = () => {
      local.pending! -= 1;
    };
    work.then(settle, settle);
    const bound = withinStall(work, stallMs, where, local.sink.ioProgress?.bind(local.sink)).catch((error: unknown) => {
      // A failed or stalled read ends the attempt whatever the link did, as a failed write does.
      const fault = onDisk(error);
      if (fault.code === "LOCAL_DISK_STALLED") slab.close(fault);
      throw fault;
    });
    underway.add(bound);
    const done = () => underway.delete(bound);
    bound.then(done, done);
    return bound;
  };
  const write = (local: LocalVolume, offset: number, data: Buffer) => bounded(local, local.sink.write(offset, data), () => `client: writing ${local.sink.path} at ${Math.floor(offset / 2 ** 20)} MiB`);
  const flush = (local: LocalVolume) => bounded(local, local.sink.flush(), () => `client: flushing ${local.sink.path}`);
  /** A read of the local disk, bounded like its writes: a disk whose reads hang must not hang the run. */
  const read = (local: LocalVolume, how: "scan" | "read") => (offset: number, length: number, into: Buffer) => {
    const sink = local.sink;
    const reading = how === "scan" && sink.scan ? sink.scan(offset, length, into) : sink.read(offset, length, into);
    return bounded(local, reading, () => `client: reading ${sink.path} at ${Math.floor(offset / 2 ** 20)} MiB`);
  };

  /**
   * Queues a landing step after the volume's earlier ones; a failure fails the connection. A step
   * fails for its frame (CORRUPT_FRAME: damaged on the way, which a retry mends) or for the disk.
   */
  const land = (i: number, bytes: number, step: () => Promise<void>) => {
    const v = perVolume[i]!;
    connection.landingAdd(bytes);
    v.landed = v.landed
      .then(() => (connection.failed ? undefined : step()))
      .catch((error: unknown) => connection.fail(error instanceof ReplicationError && error.code === "CORRUPT_FRAME" ? error : onDisk(error)))
      .finally(() => connection.landingDone(bytes));
  };

  /** Starts a background flush every FLUSH_EVERY bytes; the pass's final flush still waits for all. */
  const wrote = (i: number, bytes: number) => {
    const v = perVolume[i]!;
    v.unflushed += bytes;
    if (v.unflushed < FLUSH_EVERY || v.flushing) return;
    v.unflushed = 0;
    const local = locals[i]!;
    v.flushing = flush(local).catch((error: unknown) => {
      local.flushError ??= error;
      // Writing on would only queue more behind a disk that no longer answers.
      if (error instanceof ReplicationError && error.code === "LOCAL_DISK_STALLED") connection.fail(onDisk(error));
    }).finally(() => (v.flushing = null));
  };

  const onData = (frame: Extract<Frame, { type: Type.Data }>) => {
    const local = locals[frame.volume]!;
    const v = perVolume[frame.volume]!;
    const expected = Math.min(frame.count * LEAF_SIZE, local.size - frame.leaf * LEAF_SIZE);
    if (frame.rawLength !== expected) return malformed(`a DATA run of ${frame.rawLength} bytes at leaf ${frame.leaf} of ${local.device}, expected ${expected}`);
    const batch = batchOf(frame.volume, frame.leaf, frame.count);
    if (!batch) return;
    // Decoding starts now, on the thread pool; the write waits for its turn.
    const raw = unpack(frame.codec, frame.payload, frame.rawLength);
    raw.catch(() => undefined);
    // Every byte received counts as sent, repairs too: the summary says what crossed.
    v.counts.sent += frame.rawLength;
    if (batch.counted) v.counts.written.add(batch.first);
    // Counted at its raw size: a compressed frame grows to that while it waits to be written.
    land(frame.volume, frame.rawLength, async () => {
      const bytes = await raw;
      for (let k = 0; k * LEAF_SIZE < bytes.length; k += 1) {
        if (digest(bytes.subarray(k * LEAF_SIZE, (k + 1) * LEAF_SIZE)).compare(frame.digests, k * DIGEST_SIZE, (k + 1) * DIGEST_SIZE) !== 0) {
          throw new ReplicationError("CORRUPT_FRAME", `a block run for ${local.device} at leaf ${frame.leaf} does not match its digest; it was not written`);
        }
      }
      await write(local, frame.leaf * LEAF_SIZE, bytes);
      wrote(frame.volume, bytes.length);
      // Copied: a view would keep the whole received message alive until the batch is verified.
      const checked = Buffer.from(frame.digests);
      await readBack(local, batch, frame.leaf, bytes.length, bytes, (k) => checked.subarray(k * DIGEST_SIZE, (k + 1) * DIGEST_SIZE));
      repairLanded(frame.volume, batch, frame.leaf, frame.count);
    });
  };

  const onZero = (frame: Extract<Frame, { type: Type.Zero }>) => {
    const local = locals[frame.volume]!;
    const v = perVolume[frame.volume]!;
    const end = Math.min((frame.leaf + frame.count) * LEAF_SIZE, local.size);
    if (frame.count < 1 || (frame.leaf + frame.count - 1) * LEAF_SIZE >= local.size) return malformed(`zero run beyond ${local.device}`);
    const batch = batchOf(frame.volume, frame.leaf, frame.count);
    if (!batch) return;
    const start = frame.leaf * LEAF_SIZE;
    if (batch.counted) {
      batch.zero += end - start;
      v.counts.zeroWritten += end - start;
      v.counts.written.add(batch.first);
    }
    land(frame.volume, 0, async () => {
      for (let at = start; at < end; at += ZEROS.length) await write(local, at, ZEROS.subarray(0, Math.min(ZEROS.length, end - at)));
      wrote(frame.volume, end - start);
      await readBack(local, batch, frame.leaf, end - start, null, (k) => zeroDigest(Math.min(LEAF_SIZE, end - start - k * LEAF_SIZE)));
      repairLanded(frame.volume, batch, frame.leaf, frame.count);
    });
  };

  /** Leaves a verification GROUP was answered with have landed: they were repairs, each counted once a pass. */
  const repairLanded = (i: number, batch: InFlight, leaf: number, count: number) => {
    if ((batch.id & VERIFY_ID) === 0) return;
    const repairs = progress.repairs[i]!;
    for (let k = leaf; k < leaf + count; k += 1) repairs.add(k);
    const v = perVolume[i]!;
    v.counts.repairedLeaves = repairs.size;
    // In-pass repairs are checked again by a verification pass (a "verify" pass lists its own in `written`).
    if (phase !== "verify") v.counts.repaired.add(batch.first);
  };

  /**
   * Reads back `length` bytes just written from leaf `leaf` (`written`, or zeros when null) and
   * records each leaf's landed digest in the batch: `expected(k)` for the k-th leaf where the disk
   * returned exactly what was written, else the digest of what it returned, which the verification
   * then finds different from the agent's.
   */
  const readBack = async (local: LocalVolume, batch: InFlight, leaf: number, length: number, written: Buffer | null, expected: (k: number) => Buffer) => {
    const buf = await slab.take(Math.min(length, batchLeaves * LEAF_SIZE));
    try {
      for (let at = 0; at < length; at += buf.length) {
        const n = Math.min(buf.length, length - at);
        const back = await read(local, "read")(leaf * LEAF_SIZE + at, n, buf.subarray(0, n));
        for (let offset = 0; offset < n; offset += LEAF_SIZE) {
          const k = (at + offset) / LEAF_SIZE;
          const want = Math.min(LEAF_SIZE, n - offset);
          const part = back.subarray(offset, offset + want);
          const same = part.length === want && (written ? part.equals(written.subarray(at + offset, at + offset + want)) : isZero(part));
          batch.landed[leaf - batch.first + k] = same ? expected(k) : digest(part);
        }
      }
    } finally {
      slab.give(buf);
    }
  };

  connection.setHandler((frame) => {
    if (frame.type !== Type.Data && frame.type !== Type.Zero && frame.type !== Type.BatchDone && frame.type !== Type.NeedLeaves && frame.type !== Type.Backlog) return;
    const v = perVolume[frame.volume];
    if (!v) return malformed(`no volume ${frame.volume}`);
    if (frame.type === Type.Backlog) {
      v.backlog = frame.bytes;
      return;
    }
    if (frame.type === Type.Data) return onData(frame);
    if (frame.type === Type.Zero) return onZero(frame);
    const index = (frame.batch & ~VERIFY_ID) >>> 0;
    const batch = v.inFlight.get(index);
    if (!batch || batch.id !== frame.batch) return malformed(`unknown batch ${frame.batch}`);
    if (frame.type === Type.NeedLeaves) {
      const sendLeaves = (digests: Buffer[]) => connection.send({ type: Type.Digests, volume: frame.volume, batch: frame.batch, first: batch.first, digests });
      if (batch.digests) sendLeaves(batch.digests);
      else {
        // A known batch that changed on the agent: read and hash it now.
        batch.ours = true;
        readBatch(locals[frame.volume]!, batch.first).then(
          ({ digests }) => {
            batch.digests = digests;
            batch.ours = false;
            sendLeaves(digests);
          },
          (error: unknown) => connection.fail(error instanceof ReplicationError ? error : new ReplicationError("IO_ERROR", String(error), { cause: error })),
        );
      }
      return;
    }
    v.inFlight.delete(index);
    // Done once every write the agent sent for it has landed.
    v.landed = v.landed.then(() => batch.done());
  });

  /** Reads and hashes a batch; the buffer goes back at once, only the digests are kept. */
  const readBatch = async (local: LocalVolume, first: number): Promise<{ digests: Buffer[]; readBytes: number }> => {
    const length = Math.min(layouts[local.index]!.length(first) * LEAF_SIZE, local.size - first * LEAF_SIZE);
    const buf = await slab.take(length);
    try {
      // The pass's first look at this batch (before any write to it): a scan where the disk offers one.
      const { chunk, digests } = await readHashed(read(local, "scan"), first * LEAF_SIZE, length, buf);
      return { digests, readBytes: chunk.length };
    } finally {
      slab.give(buf);
    }
  };

  /**
   * Puts a batch in flight with its leaf digests and sends its GROUP. Resolves with the leaves the
   * agent answered, once their writes have landed, and the batch's leaf digests if it has them.
   */
  const submit = async (i: number, first: number, what: Looked, readBytes: number, verify: boolean): Promise<Answered> => {
    const { count, group } = what;
    const v = perVolume[i]!;
    const local = locals[i]!;
    // Batches are named by their first leaf: below 2^31 for any volume under 128 TiB.
    if (first >= VERIFY_ID) throw new ReplicationError("PROTOCOL_TOO_LARGE", `${local.device}: volumes of 128 TiB or more are not supported`);
    const index = first;
    const id = verify ? (index | VERIFY_ID) >>> 0 : index;
    const answered = new Uint8Array(count);
    const counted = !verify || phase === "verify";
    const done = new Promise<Answered>((resolve) => {
      const batch: InFlight = {
        id,
        counted,
        first,
        count,
        digests: what.digests,
        answered,
        landed: [],
        equal: 0,
        zero: 0,
        done: () => {
          // Leaves the agent did not answer were equal; the all-zero ones count as zero (in a
          // known batch, not read, they all count as equal).
          const digests = batch.digests;
          if (counted) {
            for (let k = 0; k < count; k += 1) {
              if (answered[k] === 1) continue;
              const len = Math.min(LEAF_SIZE, local.size - (first + k) * LEAF_SIZE);
              if (digests?.[k]!.equals(zeroDigest(len))) batch.zero += len;
              else batch.equal += len;
            }
            // Scanned counts at once: a written batch settles only once its verification is
            // answered, which on a throttled link waits behind the data.
            if (!progress.scanned[i]!.has(first)) {
              progress.scanned[i]!.add(first);
              progress.hashed[i]! += readBytes;
            }
            emit(i);
          }
          resolve({ answered, digests: batch.digests, landed: batch.landed, found: { equal: batch.equal, zero: batch.zero } });
        },
      };
      v.inFlight.set(index, batch);
    });
    // The first GROUP of an attempt tells the agent a pass starts there (a retry may skip leaf 0).
    const flags = verify ? GROUP_VERIFY : first === passStart[i] ? GROUP_PASS_START : 0;
    if (!connection.send({ type: Type.Group, volume: i, batch: id, first, count, flags, digest: group })) {
      await connection.whileOpen(connection.ready());
    }
    return done;
  };

  /** Batches in order, each read and hashed (one read ahead) or known, submitted; at most `window` in flight. */
  const lane = async (i: number, firsts: Iterable<number>, verify: boolean, onDone: (first: number, group: Buffer, done: Answered) => void): Promise<void> => {
    const local = locals[i]!;
    const waits: { holds: boolean; done: Promise<void> }[] = [];
    const list = [...firsts];
    const look = async (first: number): Promise<Looked & { readBytes: number }> => {
      const count = layouts[i]!.length(first);
      const group = verify ? undefined : known?.[i]?.get(first);
      if (group) return { count, digests: null, group, readBytes: Math.min(count * LEAF_SIZE, local.size - first * LEAF_SIZE) };
      const { digests, readBytes } = await readBatch(local, first);
      return { count: digests.length, digests, group: groupDigest(digests), readBytes };
    };
    // `window` bounds the batches in flight that hold leaf digests (memory); known batches hold
    // none, so KNOWN_WINDOW bounds all of them: a quiet continuous pass is then a stream
    // of GROUPs, not one round trip per `window` batches (1.5 TB is 94,000 batches of 16 MiB: at
    // 16 per round trip of 20 ms, two minutes a pass).
    let held = 0;
    let next = list.length > 0 ? look(list[0]!) : null;
    for (let n = 0; n < list.length; n += 1) {
      settings.signal?.throwIfAborted();
      const first = list[n]!;
      const looked = await next!;
      next = n + 1 < list.length ? look(list[n + 1]!) : null;
      // A failed read-ahead is reported when its turn comes, not as an unhandled rejection.
      next?.catch(() => undefined);
      const holds = looked.digests !== null;
      if (holds) held += 1;
      waits.push({ holds, done: submit(i, first, looked, looked.readBytes, verify).then((done) => onDone(first, looked.group, done)) });
      while (held >= window || waits.length >= KNOWN_WINDOW) {
        const oldest = waits.shift()!;
        await connection.whileOpen(oldest.done);
        if (oldest.holds) held -= 1;
      }
    }
    await connection.whileOpen(Promise.all(waits.map((w) => w.done)));
  };

  /**
   * The in-pass verification: for each batch that received writes, sends the batch's GROUP with
   * GROUP_VERIFY over the digests of the leaves written as they were read back once landed, and
   * the copy lane's of the others (bytes this pass did not touch; a known batch that was not read
   * has its other leaves read and hashed here).
   */
  const verifyLane = async (i: number, written: BatchQueue): Promise<void> => {
    const v = perVolume[i]!;
    const local = locals[i]!;
    const waits: Promise<void>[] = [];
    for await (const { first, digests, answered, landed, found } of written) {
      settings.signal?.throwIfAborted();
      // Holes (a known batch's other leaves; a written leaf whose landing was cut short) are read back here.
      const mine: (Buffer | undefined)[] = Array.from(answered, (a, k) => (a === 1 ? landed[k] : digests?.[k]));
      const unread = (k: number) => mine[k] === undefined;
      for (let k = 0; k < answered.length; ) {
        if (!unread(k)) {
          k += 1;
          continue;
        }
        let n = 1;
        while (k + n < answered.length && unread(k + n)) n += 1;
        const offset = (first + k) * LEAF_SIZE;
        const length = Math.min(n * LEAF_SIZE, local.size - offset);
        const buf = await slab.take(length);
        try {
          const back = await readHashed(read(local, "read"), offset, length, buf);
          back.digests.forEach((d, j) => (mine[k + j] = d));
        } finally {
          slab.give(buf);
        }
        k += n;
      }
      const leaves = mine as Buffer[];
      const group = groupDigest(leaves);
      waits.push(
        submit(i, first, { count: leaves.length, digests: leaves, group }, 0, true).then(({ answered: repairs }) => {
          // Repairs were counted as they landed (repairLanded); an equal batch is known equal.
          if (!repairs.includes(1)) v.counts.equalGroups.set(first, group);
          settle(i, first, found);
        }),
      );
      if (waits.length >= window) await connection.whileOpen(waits.shift()!);
    }
    await connection.whileOpen(Promise.all(waits));
  };

  /**
   * A batch is finished for this pass (equal, or written and checked): what it found counts now,
   * once, however many attempts it took (what crossed the wire counts as it arrives).
   */
  const settle = (i: number, first: number, found: Found) => {
    const v = perVolume[i]!;
    v.settled.add(first);
    v.counts.equal += found.equal;
    v.counts.zero += found.zero;
    emit(i);
  };

  /** The first batch each volume's copy lane sends in this attempt (GROUP_PASS_START). */
  const passStart: (number | undefined)[] = [];

  const volumePass = async (i: number): Promise<PassCounts> => {
    const v = perVolume[i]!;
    const local = locals[i]!;
    const listed = [...layouts[i]!.firsts()].filter((first) => (!only || only[i]?.has(first)) && !v.settled.has(first));
    if (phase === "verify") {
      // Whatever a verification pass is sent is a repair, counted as it lands (repairLanded).
      await lane(i, listed, true, (first, _, { found }) => settle(i, first, found));
    } else {
      passStart[i] = listed[0];
      // Batches that received writes go to the verification lane as soon as they have landed.
      const written = new BatchQueue();
      const copying = lane(i, listed, false, (first, group, { digests, answered, landed, found }) => {
        if (answered.includes(1)) written.push({ first, digests, answered, landed, found });
        else {
          // Equal as read: a known batch the agent asked about was read since, and its digests rule.
          v.counts.equalGroups.set(first, digests ? groupDigest(digests) : group);
          settle(i, first, found);
        }
      }).finally(() => written.end());
      await Promise.all([copying, verifyLane(i, written)]);
    }
    await v.landed;
    connection.throwIfFailed();
    await v.flushing;
    // The disk's failure, kept like a background flush's: a link that drops meanwhile must not
    // turn it into a retry, whose own flush would then succeed.
    await flush(local).catch((error: unknown) => {
      local.flushError ??= error;
      throw onDisk(error);
    });
    if (local.flushError !== undefined) {
      const e = local.flushError;
      throw e instanceof ReplicationError ? e : new ReplicationError("IO_ERROR", `flushing ${local.device}: ${String(e)}`, { cause: e });
    }
    emit(i);
    return v.counts;
  };

  const owed = () => perVolume.some((v) => [...v.inFlight.values()].some((batch) => !batch.ours));
  const unwatch = connection.watch(owed, settings.stallMs ?? STALL_MS);
  try {
    return await connection.whileOpen(Promise.all(locals.map((_, i) => volumePass(i))));
  } catch (error) {
    // Writes already under way land even after the link dropped: the next attempt must not start
    // (and verify) before they have, or the old bytes would land over the new ones, unflushed. No
    // landing step starts once the connection has failed; the last of them may start a flush,
    // whose error the next attempt must find on the volume.
    if (!connection.failed) connection.fail(error instanceof ReplicationError ? error : new ReplicationError("AGENT_UNREACHABLE", String(error), { cause: error }));
    await Promise.allSettled(perVolume.map((v) => v.landed));
    await Promise.allSettled(perVolume.map((v) => v.flushing));
    // And for reads still under way: one failing as the link drops is the disk's failure, not the
    // link's, and must end the run rather than pass unseen on a retry that reads fine. Not on a
    // cancel: a read hung on the disk would hold it until the stall limit.
    if (!settings.signal?.aborted) await Promise.allSettled([...underway]);
    throw diskFault ?? error;
  } finally {
    unwatch();
  }
}

/** Three batches per volume in memory at most: one being hashed, the next being read, one read back. */
export function passSlab(volumes: number, batchLeaves: number): Slab {
  return new Slab(3 * volumes * batchLeaves * LEAF_SIZE, batchLeaves * LEAF_SIZE);
}

/** A batch as the copy lane found it: its leaves, their digests (null: known, not read), its group digest. */
interface Looked {
  count: number;
  digests: Buffer[] | null;
  group: Buffer;
}

/** What a batch adds to the pass's counts once it is settled. */
interface Found {
  equal: number;
  zero: number;
}

/** How the agent answered a batch: the leaves it sent (DATA or ZERO), the batch's leaf digests if read, what it found. */
interface Answered {
  answered: Uint8Array;
  digests: Buffer[] | null;
  /** Digests of the answered leaves as read back once landed (see `landed` in InFlight). */
  landed: Buffer[];
  found: Found;
}

/** A batch that received writes: its first leaf, the copy lane's digests, the leaves written, what it found. */
interface Written {
  first: number;
  digests: Buffer[] | null;
  answered: Uint8Array;
  landed: Buffer[];
  found: Found;
}

/** Batches handed from the copy lane to the verification lane, as an async iterable. */
class BatchQueue implements AsyncIterable<Written> {
  private items: Written[] = [];
  private ended = false;
  private wake: (() => void) | null = null;

  push(item: Written): void {
    this.items.push(item);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Written> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) yield item;
      else if (this.ended) return;
      else await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}
