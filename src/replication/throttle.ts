/*
 * A token bucket for the failback replication configuration's bandwidth limit (Mbps; 0 = none).
 * The limit may change while a frame waits for its turn (THROTTLE): the wait is then worked out
 * again at the new rate, so lifting a limit of 1 Mbps does not leave a 1 MiB frame asleep for 8 s.
 * A cancelled throttle (its session ended) wakes the frame waiting and lets every later one through:
 * at 1 Mbps the frames already queued would otherwise keep a dead session alive for minutes.
 */
const bytesPerSecondOf = (mbps: number) => (mbps * 1_000_000) / 8;

export class Throttle {
  private bytesPerSecond: number;
  private available: number;
  private last = Date.now();
  /** The frame waiting for tokens (the sender sends one frame at a time). */
  private waiting: { timer: NodeJS.Timeout; wake: () => void } | null = null;
  private cancelled = false;

  constructor(mbps: number) {
    this.bytesPerSecond = bytesPerSecondOf(mbps);
    // At most a tenth of a second's worth in one burst, so short runs cannot exceed the limit.
    this.available = this.bytesPerSecond / 10;
  }

  /** A frame waits for its turn now: the limit, not the wire, holds the sender back (and saving
   * bytes by compressing would let more volume through it). */
  get holding(): boolean {
    return this.waiting !== null;
  }

  /** A new limit, from now on; a frame already waiting waits only as long as the new rate says. */
  setRate(mbps: number): void {
    this.refill();
    this.bytesPerSecond = bytesPerSecondOf(mbps);
    this.available = Math.min(this.available, this.bytesPerSecond / 10);
    const waiting = this.waiting;
    if (waiting) {
      clearTimeout(waiting.timer);
      this.sleep(waiting.wake);
    }
  }

  /** The session ended: the frame waiting goes at once, and nothing waits from now on. */
  cancel(): void {
    this.cancelled = true;
    const waiting = this.waiting;
    this.waiting = null;
    if (waiting) {
      clearTimeout(waiting.timer);
      waiting.wake();
    }
  }

  async take(bytes: number): Promise<void> {
    if (this.bytesPerSecond <= 0 || this.cancelled) return;
    this.refill();
    this.available -= bytes;
    if (this.available < 0) await new Promise<void>((wake) => this.sleep(wake));
  }

  private refill(): void {
    const now = Date.now();
    this.available = Math.min(this.bytesPerSecond / 10, this.available + ((now - this.last) / 1000) * this.bytesPerSecond);
    this.last = now;
  }

  /** Wakes `wake` once the tokens owed have come in (at once without a limit). */
  private sleep(wake: () => void): void {
    this.waiting = null;
    if (this.bytesPerSecond <= 0 || this.available >= 0 || this.cancelled) return wake();
    const timer = setTimeout(() => {
      this.waiting = null;
      wake();
    }, (-this.available / this.bytesPerSecond) * 1000);
    this.waiting = { timer, wake };
  }
}
