/*
 * The client's end of one link: decodes frames, counts the bytes each way (what "crossed the wire"
 * means in summaries and tests: message bytes, without TLS or WebSocket overhead), turns an ERROR
 * frame or a closed link into one ReplicationError, and holds receive-side backpressure: frames stop
 * being delivered while more than a bounded number of received bytes wait to be written.
 */
import { decode, encode, Type, type Frame } from "./codec.js";
import { ReplicationError } from "./errors.js";
import type { FrameLink } from "./link.js";

const PAUSE_ABOVE = 16 * 2 ** 20;
const RESUME_BELOW = 4 * 2 ** 20;

export class Connection {
  wireBytesIn = 0;
  wireBytesOut = 0;
  private handler: ((frame: Frame) => void) | null = null;
  private closedWith: ReplicationError | null = null;
  private onClose = new Set<(error: ReplicationError) => void>();
  private landing = 0;
  private paused = false;

  /** When the agent last sent a frame, or when silence from it last stopped counting (`watch`). */
  private lastHeard = Date.now();

  constructor(readonly link: FrameLink) {
    link.onFrame((data) => {
      if (this.closedWith) return;
      this.lastHeard = Date.now();
      this.wireBytesIn += data.length;
      let frame: Frame;
      try {
        frame = decode(data);
      } catch (error) {
        this.fail(error as ReplicationError);
        return;
      }
      if (frame.type === Type.Error) this.fail(new ReplicationError(frame.body.code, frame.body.message));
      else this.handler?.(frame);
    });
    link.onClose((reason, error) => this.fail(new ReplicationError("CONNECTION_LOST", `the connection to the agent was lost: ${reason}`, { cause: error })));
  }

  get failed(): boolean {
    return this.closedWith !== null;
  }

  fail(error: ReplicationError): void {
    if (this.closedWith) return;
    this.closedWith = error;
    for (const f of this.onClose) f(error);
    this.onClose.clear();
    this.link.terminate();
  }

  /** Throws the link's error if it has failed. */
  throwIfFailed(): void {
    if (this.closedWith) throw this.closedWith;
  }

  /**
   * `work`, or the link's error if the link fails first. The waiter is dropped once `work`
   * settles: a pass waits on the link once per batch, and a connection that lives for days of
   * continuous replication must not keep one listener per batch it ever waited on.
   */
  whileOpen<T>(work: Promise<T>): Promise<T> {
    if (this.closedWith) {
      // Nobody else waits on `work`: its own failure (the same link error, most likely) must not
      // go unhandled, which would end the process.
      work.catch(() => undefined);
      return Promise.reject(this.closedWith);
    }
    return new Promise<T>((resolve, reject) => {
      const onClose = (error: ReplicationError) => reject(error);
      this.onClose.add(onClose);
      work.then(
        (value) => {
          this.onClose.delete(onClose);
          resolve(value);
        },
        (error: unknown) => {
          this.onClose.delete(onClose);
          reject(error);
        },
      );
    });
  }

  /**
   * While `waiting()` says the agent owes answers, fails the link once it has sent nothing for
   * `stallMs`; time while this side holds reading back does not count. The heartbeat cannot see
   * this: an agent stuck on its disk still answers pings. Returns the function that stops watching.
   */
  watch(waiting: () => boolean, stallMs: number): () => void {
    this.lastHeard = Date.now();
    const every = Math.max(10, Math.floor(stallMs / 4));
    let ticked = this.lastHeard;
    const timer = setInterval(() => {
      if (this.closedWith) return;
      const now = Date.now();
      // A tick that comes late means this process was not running (a starved CPU, a long garbage
      // collection): frames may be waiting unread, and that time is not the agent's silence.
      const late = now - ticked > 2 * every;
      ticked = now;
      if (late || this.paused || !waiting()) {
        this.lastHeard = now;
        return;
      }
      const silent = now - this.lastHeard;
      if (silent >= stallMs) {
        this.fail(new ReplicationError("CONNECTION_LOST", `the agent sent nothing for ${Math.round(silent / 1000)} s while it owed answers: it may be stuck reading its disk`));
      }
    }, every);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Callers waiting on the link's failure (bounded by what is in flight, not by the connection's age). */
  get waiters(): number {
    return this.onClose.size;
  }

  setHandler(handler: (frame: Frame) => void): void {
    this.handler = handler;
  }

  /** Queues a frame; false when the caller should await `ready()` before sending more. */
  send(frame: Frame): boolean {
    const data = encode(frame);
    this.wireBytesOut += data.length;
    return this.link.send(data);
  }

  ready(): Promise<void> {
    return this.link.ready();
  }

  /** Received bytes now waiting to be written: stop reading the link while too many wait. */
  landingAdd(bytes: number): void {
    this.landing += bytes;
    if (!this.paused && this.landing > PAUSE_ABOVE) {
      this.paused = true;
      this.link.pause();
    }
  }

  landingDone(bytes: number): void {
    this.landing -= bytes;
    if (this.paused && this.landing < RESUME_BELOW) {
      this.paused = false;
      this.link.resume();
    }
  }

  close(): void {
    this.link.close();
  }
}
