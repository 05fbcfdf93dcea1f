/*
 * The agent's half of the engine, for one connection, over any FrameLink (no socket in sight).
 *
 * Each byte of the source is hashed once per pass: a GROUP makes the agent read the batch and hash
 * its leaves; the leaf digests stay in a bounded cache until the client's DIGESTS answer them (a
 * NEED_LEAVES round trip re-uses them instead of hashing again), and the batch's group digest is
 * remembered for the session, so the verification that follows the pass compares against it
 * without reading or hashing the source again. All-zero leaves are recognised by a compare, never
 * hashed.
 *
 * When the client's GROUP is the digest of an all-zero batch (a blank target), the agent sends the
 * batch's non-zero leaves at once, from the buffer it just hashed: no round trip, no re-read.
 *
 * Pipelining: a GROUP's read and hash start as soon as it arrives (bounded by a byte budget), while
 * earlier answers are still being sent; answers leave in arrival order. Sending never waits per
 * frame, only when the link's queue is above its high water mark. DATA frames carry runs of up to
 * 16 contiguous leaves, compressed on the thread pool when that pays (compression.ts).
 *
 * A session ends when its link closes or it fails: from then on nothing is read, compressed, paced
 * or sent for it (the answers still queued are dropped, the throttle lets go), and only once every
 * read and pass start under way has settled are its write trackers and volumes closed, so that a
 * tracker still starting then is closed too.
 */
import { Codec, decode, encode, GROUP_PASS_START, GROUP_VERIFY, LEAF_SIZE, MAX_BATCH_LEAVES, MAX_DATA_LEAVES, MAX_FRAME, Type, VERSION, type Frame } from "./codec.js";
import { CodecChoice } from "./codec-choice.js";
import { Packer } from "./compression.js";
import { ReplicationError } from "./errors.js";
import { groupDigest, hashLeaves, isZero, readHashed, zeroGroup } from "./leaves.js";
import type { FrameLink } from "./link.js";
import { Outbox } from "./outbox.js";
import { Slab } from "./slab.js";
import { Throttle } from "./throttle.js";
import type { BlockSource } from "./volume-file.js";
import type { WriteTracker } from "./write-tracker.js";

/** A volume the agent serves: opened afresh for each session. */
export interface ServedVolume {
  deviceName: string;
  path: string;
  open(): Promise<BlockSource>;
}

export interface SessionOptions {
  volumes: ServedVolume[];
  log: (line: string) => void;
  /** Who is connected, for the log. */
  who: string;
  /** Manual pairing: the client's expected proof and this agent's own (bound to the TLS session). */
  pairing?: { expected: string; mine: string };
  /** Read budget for batches being hashed or sent: the agent's memory bound (default 32 MiB). */
  readBudget?: number;
}

interface OpenVolume {
  source: BlockSource;
  size: number;
  deviceName: string;
  /** Group digest of each batch (by first leaf) as served in this session. */
  served: Map<number, Buffer>;
  /**
   * The current pass, once its start is settled: whether the source is unchanged since the start
   * of the previous one, and its device cache dropped when it is not.
   */
  pass?: Promise<{ unchanged: boolean }>;
  /** The source's change stamp at the start of the current pass. */
  stamp?: string;
  /** Where the source was written, region by region; null where it cannot tell (set at the first pass). */
  tracker?: WriteTracker | null;
  packer: Packer;
  /** When the last BACKLOG of this volume was sent (performance.now()). */
  backlogAt?: number;
}

/** What a GROUP's read and hash found, kept until the answer is sent. */
interface Prepared {
  digests: Buffer[];
  zero: Uint8Array;
  group: Buffer;
  chunk: Buffer;
}

/**
 * Buffers for DATA frames, reused once the link is done with them: a fresh megabyte per frame is
 * external memory that the garbage collector reclaims late, and the agent's peak memory grew by
 * the volume of data in flight between collections.
 *
 * Only a frame that fills most of a buffer gets one: the link's queue counts a frame's length, not
 * the memory behind it, so a compressed or short run in a whole megabyte let the queue's high water
 * mark (4 MiB) hold back nothing while hundreds of megabytes waited on a slow link. A smaller frame
 * gets a buffer of its own size.
 */
class FramePool {
  private free: Buffer[] = [];

  take(length: number): Buffer {
    if (length <= MAX_FRAME / 2) return Buffer.allocUnsafeSlow(length);
    return (this.free.pop() ?? Buffer.allocUnsafeSlow(MAX_FRAME)).subarray(0, length);
  }

  give(frame: Buffer): void {
    // Every buffer here owns its whole ArrayBuffer (allocUnsafeSlow); keep a bounded number.
    if (frame.buffer.byteLength === MAX_FRAME && this.free.length < 16) this.free.push(Buffer.from(frame.buffer, 0, MAX_FRAME));
  }
}

/** Batches waiting for the client's DIGESTS, per volume of the session: the client's windows bound
 * them (per volume, 16 batches read and 64 known ones in flight, and 16 in verification). A limit
 * for the whole session failed a client with many volumes that all changed at once. */
const MAX_WAITING_PER_VOLUME = 256;
/** Bytes waiting in the link's queue from which something downstream (the wire, or the receiver)
 * holds this side back, so a compression trial may be worth it. A bandwidth limit holding frames
 * back counts too: compressed frames take fewer of its bytes. */
const LINK_BOUND = 2 ** 20;
/** Between a pass's first and last batch, a volume's BACKLOG goes out at most this often. */
const BACKLOG_EVERY_MS = 1_000;
/** Frames in preparation per session: enough to keep the thread pool compressing, across batches. */
const PACK_AHEAD = 6;

/** What a session sent: volume bytes of DATA, and how much of it went compressed, into how many bytes. */
export interface SessionSummary {
  sentBytes: number;
  compressed: { volumeBytes: number; wireBytes: number };
}

type GroupFrame = Extract<Frame, { type: Type.Group }>;
type DigestsFrame = Extract<Frame, { type: Type.Digests }>;

class Session {
  volumes: OpenVolume[] = [];
  throttle = new Throttle(0);
  /** Chooses each DATA frame's codec: raw, or brotli if the client accepts it (set at HELLO). */
  choice = new CodecChoice(performance.now(), null);
  /** The client asked for BACKLOG reports (HELLO "backlog": true). */
  reportBacklog = false;
  /** Volume bytes of the DATA handed to the link while it was open. */
  sentBytes = 0;
  /** Of those, what went compressed: volume bytes, and their payloads' size. */
  readonly compressed = { volumeBytes: 0, wireBytes: 0 };
  /** Why the session ended (its link closed, or it failed); null while it runs. */
  private ended: Error | null = null;
  private readonly slab: Slab;
  private readonly outbox: Outbox;
  private readonly link: FrameLink;
  private readonly frames = new FramePool();
  private readonly waiting = new Map<string, { first: number; digests: Buffer[]; zero: Uint8Array; last: boolean }>();

  private readonly log: (line: string) => void;

  constructor(link: FrameLink, options: SessionOptions, onError: (error: unknown) => void) {
    this.link = link;
    this.log = options.log;
    this.slab = new Slab(options.readBudget ?? 32 * 2 ** 20, 16 * 2 ** 20);
    const beforeSend = (data: Buffer) => (data[0] === Type.Data ? this.throttle.take(data.length) : undefined);
    this.outbox = new Outbox(link, PACK_AHEAD, beforeSend, onError);
  }

  private send(frame: Frame): Promise<void> {
    return this.outbox.push(encode(frame));
  }

  /** The bandwidth limit the client's HELLO asked for. */
  limit(mbps: number): void {
    this.throttle = new Throttle(mbps);
    if (this.ended) this.throttle.cancel();
  }

  /**
   * The session is over: the frames queued are dropped, the one waiting for the throttle lets go,
   * and every step still running fails at its next read or send (with `reason`, which nobody sees).
   */
  end(reason: Error): void {
    if (this.ended) return;
    this.ended = reason;
    this.throttle.cancel();
    this.outbox.close(reason);
  }

  /** A prepared batch whose answer will not be sent: its buffer goes back to the read budget. */
  discard(prepared: Prepared | null): void {
    if (prepared) this.slab.give(prepared.chunk);
  }

  /**
   * Tells a client that asked how much of a volume was written since this side last read it: at a
   * pass's start and before its last batch is done, and at most once a second in between. Only
   * write tracking can tell; without it, nothing is sent.
   */
  private async backlog(volume: number, force: boolean): Promise<void> {
    const entry = this.volume(volume);
    if (!this.reportBacklog || !entry.tracker) return;
    const now = performance.now();
    if (!force && entry.backlogAt !== undefined && now - entry.backlogAt < BACKLOG_EVERY_MS) return;
    const bytes = entry.tracker.backlog();
    if (bytes === undefined) return;
    entry.backlogAt = now;
    await this.send({ type: Type.Backlog, volume, bytes });
  }

  /** BATCH_DONE, after the volume's BACKLOG when one is due (`last`: the pass's last batch). */
  private async batchDone(volume: number, batch: number, last: boolean): Promise<void> {
    await this.backlog(volume, last);
    await this.send({ type: Type.BatchDone, volume, batch });
  }

  /** Whether a GROUP is its pass's last batch of the volume (not a verification). */
  private lastOfPass(frame: GroupFrame): boolean {
    if (frame.flags & GROUP_VERIFY) return false;
    const entry = this.volume(frame.volume);
    const { start, length } = this.range(entry, frame.first, frame.count);
    return start + length >= entry.size;
  }

  private volume(index: number): OpenVolume {
    const entry = this.volumes[index];
    if (!entry) throw new ReplicationError("PROTOCOL_MALFORMED", `protocol: no volume ${index}`);
    return entry;
  }

  /** The byte range of leaves first..first+count, refused when it is not inside the volume. */
  private range(entry: OpenVolume, first: number, count: number): { start: number; length: number } {
    const start = first * LEAF_SIZE;
    const length = Math.min(count * LEAF_SIZE, entry.size - start);
    if (count < 1 || count > MAX_BATCH_LEAVES || length <= 0) throw new ReplicationError("PROTOCOL_MALFORMED", `protocol: leaves ${first}+${count} are beyond ${entry.deviceName}`);
    return { start, length };
  }

  /**
   * Reads and hashes a batch (the only hashing of these bytes on this side) into a budgeted buffer;
   * null when the batch need not be read: the source has not been written since the previous pass
   * and the client's digest is the one this session served then.
   */
  async prepare(frame: GroupFrame): Promise<Prepared | null> {
    const entry = this.volume(frame.volume);
    const { start, length } = this.range(entry, frame.first, frame.count);
    // The buffer is taken first, before any await, so that batches take the read budget in the
    // order their answers leave (slab.ts: anything else can deadlock, one volume's batches holding
    // the budget while another's, answered first, wait for it).
    const taking = this.slab.take(length);
    // A pass starts at the first leaf, or where the client says (a resumed pass skips what it
    // finished); the batches behind this one wait for its start too.
    const starts = (frame.first === 0 || (frame.flags & GROUP_PASS_START) !== 0) && !(frame.flags & GROUP_VERIFY);
    if (starts) entry.pass = startPass(entry, this.log);
    let buf: Buffer | undefined;
    try {
      const pass = await entry.pass;
      if (starts) await this.backlog(frame.volume, true);
      buf = await taking;
      // The budget frees up as the batches before this one are dropped: no read for a session that ended.
      if (this.ended) throw this.ended;
      // With a tracker, it alone says what was written (by region); without, the stamp (all or nothing).
      const quiet = entry.tracker ? !entry.tracker.written(start, length) : pass?.unchanged === true;
      // The tail beyond a smaller local disk must stay zero all along, not only when the session
      // opened: the last batch stands for it, and looks at it again whenever it may have been written.
      const tail = start + length >= entry.size ? entry.source.size - entry.size : 0;
      const tailWritten = tail > 0 && (entry.tracker ? entry.tracker.written(entry.size, tail) : pass?.unchanged !== true);
      if (quiet && !tailWritten && entry.served.get(frame.first)?.equals(frame.digest)) {
        this.slab.give(buf);
        return null;
      }
      entry.tracker?.reading(start, length + tail);
      if (tailWritten) await checkTailZero(entry.source, entry.size, entry.deviceName);
      const read = await readHashed((offset, n, into) => scan(entry.source, offset, n, into), start, length, buf);
      const prepared: Prepared = { ...read, group: groupDigest(read.digests) };
      entry.served.set(frame.first, prepared.group);
      return prepared;
    } catch (error) {
      // The reservation is given back even when the pass's start failed before it was granted.
      const taken = buf ?? (await taking.catch(() => undefined));
      if (taken) this.slab.give(taken);
      throw error;
    }
  }

  /** Answers a GROUP: equal, all-zero on the client (send the data at once), or ask for leaves. */
  async answerGroup(frame: GroupFrame, prepared: Prepared): Promise<void> {
    const { digests, zero, group, chunk } = prepared;
    // The chunk goes back to the slab once every frame taken from it is encoded (a copy).
    let encoded: Promise<unknown>[] = [];
    try {
      if (group.equals(frame.digest)) {
        await this.batchDone(frame.volume, frame.batch, this.lastOfPass(frame));
        return;
      }
      const lastLength = chunk.length - (digests.length - 1) * LEAF_SIZE;
      if (frame.count === digests.length && frame.digest.equals(zeroGroup(digests.length, lastLength))) {
        // The client's batch is all zeros: every non-zero leaf here differs, every zero one is equal.
        encoded = await this.sendRuns(frame.volume, frame.first, (i) => zero[i] === 0, (offset, length) => Promise.resolve(chunk.subarray(offset, offset + length)), digests, false);
        await this.batchDone(frame.volume, frame.batch, this.lastOfPass(frame));
        return;
      }
      if (this.waiting.size >= MAX_WAITING_PER_VOLUME * this.volumes.length) throw new ReplicationError("PROTOCOL_MALFORMED", "protocol: too many batches waiting for their leaf digests");
      this.waiting.set(`${frame.volume}:${frame.batch}`, { first: frame.first, digests, zero, last: this.lastOfPass(frame) });
      await this.send({ type: Type.NeedLeaves, volume: frame.volume, batch: frame.batch });
    } finally {
      void Promise.allSettled(encoded).then(() => this.slab.give(chunk));
    }
  }

  /** A verification GROUP equal to what this session served needs no read: it is done. */
  verifiedAlready(frame: GroupFrame): boolean {
    if ((frame.flags & GROUP_VERIFY) === 0) return false;
    return this.volume(frame.volume).served.get(frame.first)?.equals(frame.digest) === true;
  }

  /** The batch is equal on both sides: done, without a read. */
  async answerEqual(frame: GroupFrame): Promise<void> {
    await this.batchDone(frame.volume, frame.batch, this.lastOfPass(frame));
  }

  /** Answers DIGESTS: the leaves that differ, as ZERO runs or DATA runs read from the source. */
  async answerDigests(frame: DigestsFrame): Promise<void> {
    const entry = this.volume(frame.volume);
    const key = `${frame.volume}:${frame.batch}`;
    let mine = this.waiting.get(key);
    this.waiting.delete(key);
    if (!mine || mine.first !== frame.first || mine.digests.length !== frame.digests.length) {
      // Not asked for by this session (a client may always send leaf digests): hash them now.
      // Outside the read budget: the GROUPs queued behind this answer may hold all of it.
      const { start, length } = this.range(entry, frame.first, frame.digests.length);
      entry.tracker?.reading(start, length);
      const prepared = hashLeaves(await entry.source.read(start, length));
      entry.served.set(frame.first, groupDigest(prepared.digests));
      mine = { first: frame.first, digests: prepared.digests, zero: prepared.zero, last: false };
    }
    const { digests, zero } = mine;
    const differs = (i: number) => !digests[i]!.equals(frame.digests[i]!);
    // Leaves that are zero here travel as counts.
    let run: { leaf: number; count: number } | null = null;
    for (let i = 0; i < digests.length; i += 1) {
      if (zero[i] === 1 && differs(i)) {
        if (run) run.count += 1;
        else run = { leaf: frame.first + i, count: 1 };
      } else if (run) {
        await this.send({ type: Type.Zero, volume: frame.volume, ...run });
        run = null;
      }
    }
    if (run) await this.send({ type: Type.Zero, volume: frame.volume, ...run });
    const base = frame.first * LEAF_SIZE;
    // Read again now: hashed afresh, and the batch's group as served made of what was sent, so a
    // write on the Recovery Instance between the two reads is not taken for a failed write here.
    const sent = digests.slice();
    await this.sendRuns(frame.volume, frame.first, (i) => zero[i] === 0 && differs(i), (offset, length) => entry.source.read(base + offset, length), sent, true);
    entry.served.set(frame.first, groupDigest(sent));
    await this.batchDone(frame.volume, frame.batch, mine.last);
  }

  /** The next frame's codec (codec-choice.ts): raw unless compressing pays and the client accepts it. */
  private codecNow(): Codec {
    return this.choice.next(performance.now(), this.link.backlog >= LINK_BOUND || this.throttle.holding);
  }

  /**
   * Queues the leaves `wanted` among `digests.length` from `first` as DATA frames of up to 16
   * contiguous leaves, each with its leaves' digests; `bytes(offset, length)` gives their content
   * (offsets relative to leaf `first`), whose digests are `digests`, or are computed into it when
   * `rehash` (bytes read again since they were hashed). Returns the frames' preparations: the bytes
   * given may be reused once they have settled.
   */
  private async sendRuns(volume: number, first: number, wanted: (i: number) => boolean, bytes: (offset: number, length: number) => Promise<Buffer>, digests: Buffer[], rehash: boolean): Promise<Promise<Buffer>[]> {
    const count = digests.length;
    const entry = this.volume(volume);
    const frames: Promise<Buffer>[] = [];
    for (let i = 0; i < count; ) {
      if (!wanted(i)) {
        i += 1;
        continue;
      }
      let n = 1;
      while (n < MAX_DATA_LEAVES && i + n < count && wanted(i + n)) n += 1;
      const leaf = first + i;
      const length = Math.min(n * LEAF_SIZE, entry.size - leaf * LEAF_SIZE);
      const raw = await bytes(i * LEAF_SIZE, length);
      if (raw.length !== length) throw new ReplicationError("IO_ERROR", `agent: ${entry.deviceName} ended at ${leaf * LEAF_SIZE + raw.length} bytes while being served`);
      if (rehash) hashLeaves(raw).digests.forEach((d, k) => (digests[i + k] = d));
      const runDigests = Buffer.concat(digests.slice(i, i + n));
      const leaves = n;
      let encoded: Buffer | null = null;
      let packed: { codec: Codec; wireBytes: number } = { codec: Codec.Raw, wireBytes: length };
      const asked = this.codecNow();
      const frame = entry.packer.pack(raw, asked).then(({ codec, payload }) => {
        packed = { codec, wireBytes: payload.length };
        encoded = encode({ type: Type.Data, volume, leaf, count: leaves, codec, rawLength: length, digests: runDigests, payload }, (n) => this.frames.take(n));
        return encoded;
      });
      frames.push(frame);
      await this.outbox.push(frame, {
        onSent: () => {
          // The link is done with it: `length` volume bytes have left (compressed or not).
          this.choice.sent(length, performance.now(), this.link.backlog > 0 || this.throttle.holding, asked);
          if (encoded) this.frames.give(encoded);
        },
        // Counted only now: a frame queued for a client that is gone was never sent.
        onHanded: () => {
          this.sentBytes += length;
          if (packed.codec !== Codec.Raw) {
            this.compressed.volumeBytes += length;
            this.compressed.wireBytes += packed.wireBytes;
          }
        },
      });
      i += n;
    }
    return frames;
  }
}

/** A read for the pass's one look at these bytes: the source's scan where it has one (volume-file.ts). */
function scan(source: BlockSource, offset: number, length: number, into: Buffer): Promise<Buffer> {
  return source.scan ? source.scan(offset, length, into) : source.read(offset, length, into);
}

/**
 * The start of a pass over a volume: the change stamp is read and the write tracker takes in every
 * write completed so far, so that a write completing after this moment is in the next pass's
 * share; then, unless nothing changed since the previous pass started (its digests still hold),
 * the device's page cache is dropped, since what it kept from the last pass may be stale by now.
 * The session's first pass starts the tracker, which counts the whole volume as written until read.
 */
async function startPass(entry: OpenVolume, log: (line: string) => void): Promise<{ unchanged: boolean }> {
  if (entry.tracker === undefined) {
    const tracking = await entry.source.trackWrites?.();
    entry.tracker = tracking && "tracker" in tracking ? tracking.tracker : null;
    if (tracking) log(`agent: ${entry.deviceName}: ${"tracker" in tracking ? "continuous passes read only the regions written since the last read (block_rq_complete)" : `a pass after any write reads the whole volume: ${tracking.off}`}`);
  }
  const stamp = await entry.source.changeStamp?.();
  await entry.tracker?.settle();
  if (entry.tracker && !entry.tracker.working) {
    // Everything counts as written once more; from here on the stamp decides, as without one.
    log(`agent: ${entry.deviceName}: write tracking stopped; a pass after any write reads the whole volume`);
    await entry.tracker.close();
    entry.tracker = null;
    entry.stamp = undefined;
  }
  const unchanged = stamp !== undefined && stamp === entry.stamp;
  entry.stamp = stamp;
  // What the page cache kept from earlier reads may be stale wherever something was written.
  if (!unchanged || entry.tracker?.written(0, entry.source.size)) await entry.source.refresh?.();
  return { unchanged };
}

async function checkTailZero(source: BlockSource, from: number, deviceName: string): Promise<void> {
  const buf = Buffer.allocUnsafe(16 * LEAF_SIZE);
  for (let at = from; at < source.size; at += buf.length) {
    const block = await scan(source, at, Math.min(buf.length, source.size - at), buf);
    if (!isZero(block)) {
      throw new ReplicationError(
        "TAIL_NOT_ZERO",
        `agent: ${deviceName} holds data beyond the local disk's size (at ${at} of ${source.size} bytes): use a local disk of at least ${source.size} bytes`,
      );
    }
  }
}

async function openVolumes(wanted: { device?: unknown; localBytes?: unknown; recoveryBytes?: unknown }[], served: ServedVolume[]): Promise<OpenVolume[]> {
  const volumes: OpenVolume[] = [];
  try {
    for (const w of wanted) {
      const entry = served.find((v) => v.deviceName === w.device);
      if (!entry || typeof w.localBytes !== "number" || w.localBytes <= 0) {
        throw new ReplicationError("UNKNOWN_VOLUME", `agent: this Recovery Instance has no volume ${quote(String(w.device))} (it serves ${served.map((v) => v.deviceName).join(", ")})`);
      }
      const source = await entry.open();
      volumes.push({ source, size: Math.min(source.size, w.localBytes), deviceName: entry.deviceName, served: new Map(), packer: new Packer() });
      // Before the tail check: a larger wrong disk would otherwise be read to its end and refused
      // as TAIL_NOT_ZERO, advice to buy a larger local disk when --volume is what is wrong.
      if (typeof w.recoveryBytes === "number" && w.recoveryBytes !== source.size) {
        throw new ReplicationError(
          "VOLUME_SIZE_MISMATCH",
          `agent: ${entry.deviceName} is served from ${entry.path} (${source.size} bytes), but the Recovery Instance's volume is ${w.recoveryBytes} bytes: --volume ${entry.deviceName}=PATH names another disk; nothing was sent`,
        );
      }
      // The first pass drops the device's page cache before it reads (startPass); the tail is read
      // before that, so it drops it first itself.
      if (w.localBytes < source.size) {
        await source.refresh?.();
        await checkTailZero(source, w.localBytes, entry.deviceName);
      }
    }
    return volumes;
  } catch (error) {
    // The session never starts: close what it opened.
    await Promise.all(volumes.map((v) => v.source.close()));
    throw error;
  }
}

/** Characters of a name the client chose quoted in a message: enough to recognise it. */
const QUOTED_CHARS = 200;
/** Characters of an ERROR's message: it must fit the frame's JSON (codec.ts MAX_JSON) whatever it quotes. */
const ERROR_CHARS = 1024;

/** At most `max` characters of `text`, with an ellipsis where it was cut. */
function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** A name the client sent, as a message quotes it. */
function quote(name: string): string {
  return JSON.stringify(clip(name, QUOTED_CHARS));
}

/**
 * Serves one client over `link` until it closes: HELLO, then GROUP / DIGESTS answered in order.
 * Resolves once the link is closed and every volume it opened is closed again.
 */
export function serveSession(link: FrameLink, options: SessionOptions): Promise<SessionSummary> {
  const { log, who } = options;
  let started = false;
  let queue: Promise<void> = Promise.resolve();
  let failed = false;
  let closed = false;
  /** Reads and pass starts under way (GROUPs' preparations): the cleanup waits for them. */
  const preparing = new Set<Promise<unknown>>();
  const session = new Session(link, options, (error) => fail(error));
  // Never throws: it runs in .catch(), and a rejection there would be unhandled and end the process.
  const fail = (error: unknown) => {
    // A failure after the link closed is only the session's steps stopping: there is no one to tell.
    if (failed || closed) return;
    failed = true;
    const e = error instanceof ReplicationError ? error : new ReplicationError("AGENT_ERROR", `agent: ${error instanceof Error ? error.message : String(error)}`);
    session.end(e);
    const message = clip(e.message, ERROR_CHARS);
    log(`${who}: ${e.code}: ${message}`);
    try {
      link.send(encode({ type: Type.Error, body: { code: e.code, message } }));
    } catch (sending) {
      log(`${who}: cannot send the error: ${sending instanceof Error ? sending.message : String(sending)}`);
    } finally {
      link.close();
    }
  };
  /** Queues a step; once the session failed or its link closed, `skip` runs in its turn instead. */
  const then = (step: () => Promise<void>, skip?: () => void) => {
    queue = queue.then(() => (failed || closed ? skip?.() : step())).catch(fail);
  };

  link.onFrame((data) => {
    if (failed) return;
    let frame: Frame;
    try {
      frame = decode(data);
    } catch (error) {
      fail(error);
      return;
    }
    if (!started) {
      if (frame.type !== Type.Hello) return fail(new ReplicationError("PROTOCOL_MALFORMED", "protocol: expected HELLO first"));
      started = true;
      const body = frame.body;
      then(async () => {
        if (options.pairing && body.proof !== options.pairing.expected) {
          log(`refused ${who}: wrong pairing code`);
          throw new ReplicationError("PAIRING_REFUSED", "agent: the pairing code does not match: start both ends with the same --pairing-code");
        }
        const wanted = Array.isArray(body.volumes) ? (body.volumes as { device?: unknown; localBytes?: unknown }[]) : [];
        const accepts = Array.isArray(body.codecs) && body.codecs.includes("brotli");
        session.volumes = await openVolumes(wanted, options.volumes);
        session.choice = new CodecChoice(performance.now(), accepts ? Codec.Brotli : null);
        session.reportBacklog = body.backlog === true;
        const mbps = typeof body.throttleMbps === "number" && body.throttleMbps > 0 ? body.throttleMbps : 0;
        session.limit(mbps);
        log(`${who}: session for ${session.volumes.map((v) => `${v.deviceName} (${v.size} bytes)`).join(", ")}${mbps ? `, throttled to ${mbps} Mbps` : ""}${accepts ? ", brotli when it pays" : ""}`);
        const sizes = session.volumes.map((v) => ({ deviceName: v.deviceName, bytes: v.source.size }));
        link.send(encode({ type: Type.Ready, body: { version: VERSION, volumes: sizes, proof: options.pairing?.mine } }));
      });
      return;
    }
    if (frame.type === Type.Group) {
      const group = frame;
      let prepared: Promise<Prepared | null> | null = null;
      try {
        // The client sends GROUPs only after READY, so the session's volumes are open here.
        if (!session.verifiedAlready(group)) {
          // The read and hash start now, while the answers before this one are still being sent;
          // the read budget (first come, first served) bounds how far ahead this runs.
          const preparation = session.prepare(group);
          prepared = preparation;
          preparing.add(preparation);
          // Its failure is reported in its turn, below; not as an unhandled rejection before.
          const settled = () => void preparing.delete(preparation);
          preparation.then(settled, settled);
        }
      } catch (error) {
        fail(error);
        return;
      }
      const ready = prepared;
      then(
        () => (ready ? ready.then((p) => (p ? session.answerGroup(group, p) : session.answerEqual(group))) : session.answerEqual(group)),
        // Not answered: its buffer goes back, so the batches behind it get theirs, and stop there.
        () => void ready?.then((p) => session.discard(p), () => undefined),
      );
    } else if (frame.type === Type.Digests) {
      const digests = frame;
      then(() => session.answerDigests(digests));
    } else if (frame.type === Type.Throttle && started) {
      // At once, not in the answers' turn: the frames already waiting go out at the new rate.
      session.throttle.setRate(frame.mbps);
      // The rates the codec choice measured were the old limit's.
      session.choice.reset(performance.now());
      log(`${who}: bandwidth limit now ${frame.mbps ? `${frame.mbps} Mbps` : "none"}`);
    } else {
      fail(new ReplicationError("PROTOCOL_MALFORMED", `protocol: unexpected message ${frame.type}`));
    }
  });

  return new Promise((resolve) => {
    link.onClose((reason) => {
      closed = true;
      session.end(new ReplicationError("AGENT_ERROR", `agent: the link to ${who} ${reason}`));
      void queue.then(async () => {
        // A pass start still under way sets its volume's tracker when it settles: only then can it be closed.
        await Promise.allSettled([...preparing]);
        await Promise.all(session.volumes.map(async (v) => {
          await v.pass?.catch(() => undefined);
          await v.tracker?.close();
          await v.source.close().catch(() => undefined);
        }));
        resolve({ sentBytes: session.sentBytes, compressed: { ...session.compressed } });
      });
    });
  });
}
