/*
 * The agent's outgoing frames, in order. A frame may still be in preparation (being compressed on
 * the thread pool) when it is queued: the pump sends each as soon as it and every frame before it
 * are ready, so compressions of several frames, across batches, overlap while the wire order stays
 * the order of queueing. A queuer waits only when too many frames are still in preparation; the
 * pump waits only when the link's queue is above its high water mark.
 */
import type { FrameLink } from "./link.js";

export class Outbox {
  private readonly frames: { frame: Promise<Buffer>; onSent?: () => void }[] = [];
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

  /**
   * Queues a frame (or one being prepared); resolves once there is room for more. `onSent` runs
   * when the link no longer needs the frame's buffer, or the frame was dropped.
   */
  async push(frame: Buffer | Promise<Buffer>, onSent?: () => void): Promise<void> {
    if (this.failure) {
      onSent?.();
      throw this.failure;
    }
    const queued = Promise.resolve(frame);
    // A preparation that fails is reported by the pump, in its turn.
    queued.catch(() => undefined);
    this.frames.push({ frame: queued, onSent });
    if (!this.pumping) void this.pump();
    if (this.frames.length > this.ahead) await new Promise<void>((wake) => this.roomWaiters.push(wake));
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.frames.length > 0) {
        const { frame, onSent } = this.frames[0]!;
        const data = await frame;
        this.frames.shift();
        if (this.frames.length <= this.ahead) this.wake();
        await this.beforeSend(data);
        if (!this.link.send(data, onSent)) await this.link.ready();
      }
    } catch (error) {
      this.failure = error;
      for (const { onSent } of this.frames.splice(0)) onSent?.();
      this.wake();
      this.onError(error);
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
