/*
 * A bound on each write and flush of a local disk. A disk that stops completing them (a dying
 * disk, a hung USB bridge) would otherwise hang the run without a word: writes waiting to land make
 * the client stop reading the link (backpressure), and the stall watch on the agent
 * (Connection.watch) does not count that time, rightly, since the agent is not the one silent.
 *
 * The operation itself cannot be called off (the kernel holds it, and a FileHandle's close waits
 * for it): the caller gets LOCAL_DISK_STALLED, and whatever the operation returns later is dropped.
 * Each operation is timed on its own, from its start, so a slow disk that still completes each
 * write under the limit never trips it, however long the pass.
 */
import { ReplicationError } from "./errors.js";

/** `work`, or LOCAL_DISK_STALLED once it has not completed after `stallMs`; `where` says what and
 * where ("client: writing /dev/sdb at 4096 MiB"). */
export function withinStall<T>(work: Promise<T>, stallMs: number, where: () => string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      // A completion that came while this process was not running (a starved CPU, a long garbage
      // collection) is delivered in the poll phase of this same loop turn, before immediates run
      // (libuv's loop: timers, then poll, then check): it wins, and only then is the disk stalled.
      setImmediate(() => {
        if (settled) return;
        settled = true;
        reject(new ReplicationError("LOCAL_DISK_STALLED", `${where()}: not completed after ${duration(stallMs)}: the local disk has stopped answering (failing, or behind a hung USB bridge or controller)`));
      });
    }, stallMs);
    work.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

function duration(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`;
}
