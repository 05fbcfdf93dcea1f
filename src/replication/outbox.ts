/*
 * The agent's outgoing frames, in order. A frame may still be in preparation (being compressed on
 * the thread pool) when it is queued: the pump sends each as soon as it and every frame before it
 * are ready, so compressions of several frames, across batches, overlap while the wire order stays
 * the order of queueing. A queuer waits only when too many frames are still in preparation; the
 * pump waits only when the link's queue is above its high water mark.
 *
 * Once closed (the link closed, or the session failed) the outbox drops what it holds, sends
 * nothing more, and refuses new frames, so that the step queueing them stops instead of reading,
 * compressing and pacing answers for a client that is gone.
 */
import type { FrameLink } from "./link.js";

/** What a queued frame's owner hears of it. */
export interface FrameHooks {
  /** The link no longer needs the frame's buffer, or the frame was dropped. */
  onSent?: () => void;
  /** The frame was handed to the link while it was open (not dropped). */
  onHanded?: () => void;
}

export class Outbox {
  private readonly frames: ({ frame: Promise<Buffer> } & FrameHooks)[] = [];
  private pumping = false;
  private roomWaiters: (() => void)[] = [];
  private failure: unknown = null;

  constructor(
    private readonly link: FrameLink,
    private readonly ahead: number,
    /** Called before a frame is sent (the throttle); may wait. */
    private readonly beforeSend: (frame: Buffer) => Promise<void> | void,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Queues a frame (or one being prepared); resolves once there is room for more. */
  async push(frame: Buffer | Promise<Buffer>, hooks: FrameHooks = {}): Promise<void> {
    if (this.failure) {
      hooks.onSent?.();
      throw this.failure;
    }
    const queued = Promise.resolve(frame);
    // A preparation that fails is reported by the pump, in its turn.
    queued.catch(() => undefined);
    this.frames.push({ frame: queued, ...hooks });
    if (!this.pumping) void this.pump();
    if (this.frames.length > this.ahead) await new Promise<void>((wake) => this.roomWaiters.push(wake));
    if (this.failure) throw this.failure;
  }

  /** Drops every frame queued, and refuses those pushed later (with `reason`). */
  close(reason: Error): void {
    this.failure ??= reason;
    for (const { onSent } of this.frames.splice(0)) onSent?.();
    this.wake();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.frames.length > 0) {
        const { frame, onSent, onHanded } = this.frames[0]!;
        const data = await frame;
        if (this.failure) break;
        this.frames.shift();
        if (this.frames.length <= this.ahead) this.wake();
        await this.beforeSend(data);
        // Closed while it waited for its turn (the throttle): it goes nowhere.
        if (this.failure || this.link.closed === true) {
          onSent?.();
          break;
        }
        onHanded?.();
        if (!this.link.send(data, onSent)) await this.link.ready();
      }
    } catch (error) {
      const first = !this.failure;
      this.failure ??= error;
      for (const { onSent } of this.frames.splice(0)) onSent?.();
      this.wake();
      if (first) this.onError(error);
    } finally {
      this.pumping = false;
    }
  }

  private wake(): void {
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of waiters) wake();
  }
}
