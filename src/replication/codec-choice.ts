/*
 * Whether compressing DATA pays on this link right now, decided by measuring rather than guessing.
 * Pure: the caller passes the clock.
 *
 * Compression can only pay while frames queue for the wire or behind a bandwidth limit
 * (`backlogged`); but frames also queue when the receiver, not the wire, is the bottleneck
 * (loopback, a slow client), and there compressing costs more than it saves. So the chooser
 * measures the rate at which raw (volume) bytes leave, first while sending raw, then during a short
 * trial with compression, and keeps compressing unless the trial moved clearly less volume per
 * second (KEEP_ABOVE) than the best of the last raw windows. Whatever limits the rate in either mode
 * (the wire, the receiver, or this side's CPU) counts. A failed trial is retried after RETRY_MS (the
 * data or the link may change); a kept choice is re-tested as well, after HOLD_MS, and after twice
 * as long each time a re-test confirms it (up to MAX_HOLD_MS): each test spends a raw window.
 *
 * Each mode is judged by the frames packed for it: frames packed before a change of mode still
 * queue ahead of the new ones (in the outbox, behind a bandwidth limit: seconds of them at a few
 * Mbps), so a trial measured over the first 600 ms after it began measured raw frames.
 *
 * A trial needs at least two raw windows, and every recent one (RAW_HISTORY) below TRY_BELOW: a
 * fast path has slow moments (its first moments, the receiver flushing its disk), and one slow
 * window alone once started a trial that was then compared with that window, kept, and held: on
 * loopback a 2 GiB pass compressed most of its data and took twice as long. A slow link therefore
 * compresses after 1.2 s of busy time. The history outlives a compressed stretch, so the raw
 * windows after it are judged with those before; but a re-test waits for at least one new raw
 * window, or it would judge a trial by rates from before (a path that became fast would never be
 * seen). A new bandwidth limit clears the history (`reset`).
 *
 * A trial starts only below TRY_BELOW: brotli 1 compresses about 200 MB/s a core, so a path that
 * already moves more than that raw cannot gain, and a short trial there misleads: smaller frames
 * fill the socket buffers (megabytes) faster, which reads as a higher rate for a while.
 *
 *   raw --(backlogged, recent raw windows all slow, one of them new)--> trial
 *   trial --(clearly slower than raw: wait RETRY_MS)--> raw
 *   trial --(not slower)--> compress --(HOLD_MS, doubling while re-tests confirm it)--> raw
 *   any --(reset: the path changed)--> raw, with no history
 */
import { Codec } from "./codec.js";

/** Frames leave in bursts of a few MiB (the link's queue refills at its low water mark): windows
 * must hold many bursts for a rate to mean something. A trial is measured only once the socket
 * buffers have had time to fill with the smaller frames. */
const TRIAL_WINDOW_MS = 300;
const TRIAL_SETTLE_MS = 300;
/** The raw rate is taken over 600 ms of busy time: a session's first moments (the pipeline
 * filling, batches ramping up) are slower than its steady state and must not decide alone. */
const RAW_WINDOW_MS = 600;
/** Raw windows remembered (about 2.4 s of busy time): a trial needs all of them below TRY_BELOW,
 * and the best of them is the rate to beat. */
const RAW_HISTORY = 4;
const MIN_RAW_WINDOWS = 2;
const RETRY_MS = 3000;
/** A trial is kept unless it moved clearly less volume per second than raw. Below TRY_BELOW the
 * wire is the likely bottleneck and compression the likely gain, and smaller frames filling the
 * socket buffers flatter a trial anyway: so the trial's job is to catch compression that hurts
 * (a starved CPU), not to prove a gain. */
const KEEP_ABOVE = 0.9;
/** Raw rate (bytes/s) above which compression is not tried: 1.2 Gbit/s. */
const TRY_BELOW = 150e6;
/** How long compressing holds before it is tested again; once confirmed, twice as long, up to
 * MAX_HOLD_MS, so a link that changes is followed within about a minute. */
const HOLD_MS = 8000;
const MAX_HOLD_MS = 64_000;

type State = "raw" | "trial" | "compress";

export class CodecChoice {
  private state: State = "raw";
  private since: number;
  private last: number;
  private busyMs = 0;
  private windowBytes = 0;
  /** Rates of the latest raw windows, newest last (at most RAW_HISTORY). */
  private rawRates: number[] = [];
  private retryAt = 0;
  /** A frame of the current mode has left (the ones after it count); a raw window was measured
   * since raw was entered: a re-test needs one, or it would judge a trial by rates from before. */
  private counting = false;
  private freshRaw = false;
  /** How long compressing holds; 0 when raw won the last test (nothing to confirm). */
  private holdMs = 0;

  /** `codec`: the compressing codec the client accepts (null: always raw). */
  constructor(
    now: number,
    private readonly codec: Codec | null,
  ) {
    this.since = now;
    this.last = now;
  }

  /**
   * Records `rawBytes` of volume data that the link finished sending at `now`, in a frame packed
   * when `next` said `asked`; `busy`: more frames were still queued behind it. Only time during
   * which frames kept queueing counts, so a stretch with nothing to send (a zero region) does not
   * read as a slow link. Only frames asked in the current mode count, from the second on: the
   * first waited behind the frames of the mode before.
   */
  sent(rawBytes: number, now: number, busy: boolean, asked: Codec): void {
    const elapsed = now - this.last;
    this.last = now;
    if (!busy || asked !== this.current()) return;
    if (!this.counting) {
      this.counting = true;
      this.since = now;
      return;
    }
    this.busyMs += elapsed;
    this.windowBytes += rawBytes;
    if (this.busyMs < (this.state === "raw" ? RAW_WINDOW_MS : TRIAL_WINDOW_MS)) return;
    const rate = (this.windowBytes * 1000) / this.busyMs;
    this.busyMs = 0;
    this.windowBytes = 0;
    if (this.state === "raw") {
      this.rawRates.push(rate);
      this.freshRaw = true;
      if (this.rawRates.length > RAW_HISTORY) this.rawRates.shift();
    } else if (this.state === "trial" && now - this.since >= TRIAL_SETTLE_MS + TRIAL_WINDOW_MS) {
      this.judge(rate, now);
    }
  }

  /** The codec for the next frame: Codec.Raw, or the accepted one. */
  next(now: number, backlogged: boolean): Codec {
    if (this.state === "raw" && this.codec !== null && backlogged && this.freshRaw && this.rawRates.length >= MIN_RAW_WINDOWS && this.bestRaw() < TRY_BELOW && now >= this.retryAt) {
      this.enter("trial", now);
    } else if (this.state === "compress" && now - this.since >= this.holdMs) this.enter("raw", now);
    return this.current();
  }

  /**
   * The path changed under the chooser (a bandwidth limit set, changed or lifted): rates measured
   * before no longer describe it, so it starts over, raw, as at a session's start.
   */
  reset(now: number): void {
    this.rawRates = [];
    this.holdMs = 0;
    this.retryAt = 0;
    this.enter("raw", now);
  }

  private current(): Codec {
    return this.state === "raw" || this.codec === null ? Codec.Raw : this.codec;
  }

  /** The trial moved `rate` volume bytes per second: keep compressing, or go back to raw. */
  private judge(rate: number, now: number): void {
    if (rate < this.bestRaw() * KEEP_ABOVE) {
      this.holdMs = 0;
      this.enter("raw", now);
      this.retryAt = now + RETRY_MS;
      return;
    }
    this.holdMs = this.holdMs > 0 ? Math.min(MAX_HOLD_MS, this.holdMs * 2) : HOLD_MS;
    this.enter("compress", now);
  }

  private enter(state: State, now: number): void {
    this.state = state;
    this.since = now;
    this.busyMs = 0;
    this.windowBytes = 0;
    this.counting = false;
    this.freshRaw = false;
  }

  private bestRaw(): number {
    return Math.max(0, ...this.rawRates);
  }
}
