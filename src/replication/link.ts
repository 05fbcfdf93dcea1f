/*
 * The engine's view of its transport: an ordered, reliable channel of whole frames with
 * backpressure both ways. The engine (agent-session.ts, client-pass.ts) knows only this interface;
 * the WebSocket-over-TLS wiring is `wsLink` below, and the tests use an in-memory pair.
 *
 * Sending never waits: `send` queues the frame and says whether the queue is still below its high
 * water mark; a sender that gets false awaits `ready()`. That is one await per megabyte at most,
 * instead of one per frame, and the queue stays bounded (ws: "bufferedAmount", send callbacks).
 */
import type { WebSocket } from "ws";

export interface FrameLink {
  /**
   * Queues one frame; false when the caller should await `ready()` before sending more.
   * `onSent` runs once the transport no longer needs the buffer (it may then be reused).
   */
  send(frame: Buffer, onSent?: () => void): boolean;
  /** Resolves once the queued bytes are below the low water mark. */
  ready(): Promise<void>;
  /** Bytes queued and not yet taken by the transport: high while the wire is the bottleneck. */
  readonly backlog: number;
  /** True once a frame sent would be dropped (the link is closing or closed), where the link can tell. */
  readonly closed?: boolean;
  /** Where received frames go, in order. */
  onFrame(listener: (frame: Buffer) => void): void;
  /** Called once, when the link closes or fails, with a reason for the log. */
  onClose(listener: (reason: string, error?: Error) => void): void;
  /** Receive-side backpressure: stop delivering frames until `resume()`. */
  pause(): void;
  resume(): void;
  /** Closes cleanly after the queued frames; `terminate` drops them. */
  close(): void;
  terminate(): void;
}

const HIGH_WATER = 4 * 2 ** 20;
const LOW_WATER = 1 * 2 ** 20;

/** Counts bytes handed to a transport and not yet taken, and wakes senders when it drains. */
export class SendQueue {
  private queued = 0;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly high = HIGH_WATER,
    private readonly low = LOW_WATER,
  ) {}

  get bytes(): number {
    return this.queued;
  }

  add(bytes: number): boolean {
    this.queued += bytes;
    return this.queued < this.high;
  }

  done(bytes: number): void {
    this.queued -= bytes;
    if (this.queued <= this.low && this.waiters.length > 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    }
  }

  ready(): Promise<void> {
    if (this.queued <= this.low) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Wakes every waiter (the link closed: their next send fails instead of hanging). */
  release(): void {
    this.queued = 0;
    this.done(0);
  }
}

/**
 * A FrameLink over an open WebSocket (binary messages, one frame each).
 *
 * `heartbeatMs`: a ping that often; a link that neither answers one nor sends anything for a
 * whole period is dropped (between one and two periods after it went silent). A path that dies
 * silently (a firewall's state dropped, a cable pulled far away) sends no FIN or RST, and TCP alone
 * would wait on it for a quarter of an hour or, with nothing to send, for ever. While this side
 * holds reading back (`pause`) it cannot see an answer, so that time does not count.
 */
export function wsLink(ws: WebSocket, options: { heartbeatMs?: number; socket?: { readonly bytesRead: number } } = {}): FrameLink {
  const queue = new SendQueue();
  let closeListener: ((reason: string, error?: Error) => void) | null = null;
  let closed = false;
  let heard = true;
  let paused = false;
  // Bytes of a message still arriving count as hearing: on a link throttled to a few hundred
  // kbit/s, one 1 MiB frame takes longer than a heartbeat, and the pong waits behind it.
  let bytesRead = options.socket?.bytesRead ?? 0;
  const heartbeat = options.heartbeatMs
    ? setInterval(() => {
        const read = options.socket?.bytesRead ?? 0;
        if (read !== bytesRead) heard = true;
        bytesRead = read;
        if (paused || heard) {
          heard = false;
          ws.ping();
          return;
        }
        // A timer that fires late (this process was busy) runs before the socket is read: an
        // answer may be waiting there. It is read before the check below.
        setImmediate(() => {
          if (heard || paused || closed) return;
          close(`nothing heard from the other end for ${(options.heartbeatMs! / 1000).toFixed(1)} s, not even an answer to a ping`);
          ws.terminate();
        });
      }, options.heartbeatMs)
    : undefined;
  heartbeat?.unref();
  const close = (reason: string, error?: Error) => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    queue.release();
    closeListener?.(reason, error);
  };
  ws.on("close", (code: number) => close(`closed (${code})`));
  ws.on("error", (error: Error) => close(`failed: ${error.message}`, error));
  ws.on("pong", () => (heard = true));
  return {
    send(frame, onSent) {
      // A frame never handed to the socket is not referenced by it: its buffer may go back at once.
      if (closed || ws.readyState !== ws.OPEN) {
        onSent?.();
        return true;
      }
      const below = queue.add(frame.length);
      // The callback runs once the frame is written to the socket (TLS has encrypted it into its
      // own buffers by then), or the socket failed.
      ws.send(frame, { binary: true }, () => {
        queue.done(frame.length);
        onSent?.();
      });
      return below;
    },
    ready: () => queue.ready(),
    get backlog() {
      return queue.bytes;
    },
    get closed() {
      return closed || ws.readyState !== ws.OPEN;
    },
    onFrame(listener) {
      ws.on("message", (data: Buffer, isBinary: boolean) => {
        if (!isBinary) {
          close("a text message on a binary protocol");
          ws.terminate();
          return;
        }
        heard = true;
        listener(data);
      });
    },
    onClose(listener) {
      closeListener = listener;
    },
    pause: () => {
      paused = true;
      ws.pause();
    },
    resume: () => {
      paused = false;
      heard = true;
      ws.resume();
    },
    close: () => ws.close(1000),
    terminate: () => ws.terminate(),
  };
}
