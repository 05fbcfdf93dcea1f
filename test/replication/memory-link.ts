/*
 * An in-memory FrameLink pair (after ws's test/duplex-pair.js): frames cross asynchronously, in
 * order, with backpressure both ways, and every byte that crosses is counted. `bytesPerMs` makes a
 * slow wire (frames wait in the sender's queue, as on a throttled network); `tap` sees each frame
 * on its way and may replace it (to damage one).
 */
import type { FrameLink } from "../../src/replication/index.js";
import { SendQueue } from "../../src/replication/link.js";

export interface PairOptions {
  bytesPerMs?: number;
  tap?: (frame: Buffer, from: "client" | "agent") => Buffer;
}

export interface Counts {
  toAgent: number;
  toClient: number;
}

class End implements FrameLink {
  peer!: End;
  private readonly queue = new SendQueue();
  private readonly outgoing: { frame: Buffer; onSent?: () => void }[] = [];
  private listener: ((frame: Buffer) => void) | null = null;
  private closeListener: ((reason: string) => void) | null = null;
  private paused = false;
  private pumping = false;
  /** Bytes the wire may still carry now (negative: a frame larger than a tick's worth is in flight). */
  private credit = 0;
  private lastTick = 0;
  closed = false;

  constructor(
    private readonly side: "client" | "agent",
    private readonly options: PairOptions,
    private readonly counts: Counts,
  ) {}

  get backlog(): number {
    return this.queue.bytes;
  }

  send(frame: Buffer, onSent?: () => void): boolean {
    if (this.closed) {
      onSent?.();
      return true;
    }
    this.outgoing.push({ frame, onSent });
    const below = this.queue.add(frame.length);
    this.pump();
    return below;
  }

  ready(): Promise<void> {
    return this.queue.ready();
  }

  onFrame(listener: (frame: Buffer) => void): void {
    this.listener = listener;
  }

  onClose(listener: (reason: string) => void): void {
    this.closeListener = listener;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.peer.pump();
  }

  close(): void {
    // Whatever is queued still crosses first, as with a WebSocket close.
    const wait = () => (this.outgoing.length === 0 ? this.shut("closed") : setTimeout(wait, 1));
    wait();
  }

  terminate(): void {
    this.shut("terminated");
  }

  private shut(reason: string): void {
    for (const end of [this, this.peer]) {
      if (end.closed) continue;
      end.closed = true;
      for (const { onSent } of end.outgoing.splice(0)) onSent?.();
      end.queue.release();
      setImmediate(() => end.closeListener?.(reason));
    }
  }

  /** Delivers queued frames to the peer, one tick at a time, at the wire's speed if it has one. */
  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    const tick = () => {
      const rate = this.options.bytesPerMs;
      if (rate !== undefined) {
        const now = performance.now();
        // The debt of a large frame carries over, so the wire's speed holds whatever the frame size.
        this.credit = Math.min(rate, this.credit + (this.lastTick === 0 ? rate : (now - this.lastTick) * rate));
        this.lastTick = now;
      } else {
        this.credit = Infinity;
      }
      while (this.outgoing.length > 0 && !this.peer.paused && !this.closed && this.credit > 0) {
        const { frame: sent, onSent } = this.outgoing.shift()!;
        // The wire copies: the sender may reuse its buffer once delivered, the receiver keeps its own.
        const frame = Buffer.from(sent);
        onSent?.();
        this.credit -= frame.length;
        this.queue.done(frame.length);
        if (this.side === "client") this.counts.toAgent += frame.length;
        else this.counts.toClient += frame.length;
        const delivered = this.options.tap ? this.options.tap(frame, this.side) : frame;
        this.peer.listener?.(delivered);
      }
      if (this.outgoing.length > 0 && !this.peer.paused && !this.closed) setTimeout(tick, 1);
      else this.pumping = false;
    };
    setImmediate(tick);
  }
}

/** Two connected ends: give `client` to the engine's client, `agent` to serveSession. */
export function linkPair(options: PairOptions = {}, counts: Counts = { toAgent: 0, toClient: 0 }): { client: FrameLink; agent: FrameLink; counts: Counts } {
  const client = new End("client", options, counts);
  const agent = new End("agent", options, counts);
  client.peer = agent;
  agent.peer = client;
  return { client, agent, counts };
}
