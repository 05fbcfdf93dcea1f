/*
 * A bound on each read, write and flush of a local disk. A disk that stops completing them (a
 * dying disk, a hung USB bridge) would otherwise hang the run without a word: writes waiting to land
 * make the client stop reading the link (backpressure), a scan that never returns sends nothing, and
 * the stall watch on the agent (Connection.watch) does not count that time, rightly, since the agent
 * is not the one silent.
 *
 * The operation itself cannot be called off (the kernel holds it, and a FileHandle's close waits
 * for it): the caller gets LOCAL_DISK_STALLED, and whatever the operation returns later is dropped.
 * Each operation is timed on its own, from its start, so a slow disk that still completes each
 * write under the limit never trips it, however long the pass.
 *
 * A flush may outlast the limit on a healthy disk: fdatasync writes out everything the page cache
 * holds dirty for the file, gigabytes on a large server (the kernel's dirty limits are a share of
 * RAM) behind a slow disk. So past the limit the disk's own counters are read (`progress`, the
 * block layer's completed reads and writes) and read again every quarter of the limit: while they
 * move, the disk is working through its queue, and only a quarter with nothing completed stalls it.
 */
import { ReplicationError } from "./errors.js";

/**
 * `work`, or LOCAL_DISK_STALLED once it has not completed after `stallMs` and, where `progress`
 * can tell, the disk has completed nothing for a quarter of that; `where` says what and where
 * ("client: writing /dev/sdb at 4096 MiB").
 */
export function withinStall<T>(work: Promise<T>, stallMs: number, where: () => string, progress?: () => Promise<string | undefined>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let seen: string | undefined;
    const quarter = Math.max(1, Math.floor(stallMs / 4));
    const stall = () => {
      settled = true;
      const idle = seen !== undefined ? `, and the disk completed no read or write in the last ${duration(quarter)}` : "";
      reject(new ReplicationError("LOCAL_DISK_STALLED", `${where()}: not completed after ${duration(stallMs)}${idle}: the local disk has stopped answering (failing, or behind a hung USB bridge or controller)`));
    };
    const check = async () => {
      const now = await progress?.().catch(() => undefined);
      if (settled) return;
      if (now === undefined || now === seen) return stall();
      seen = now;
      timer = setTimeout(expire, quarter);
    };
    // A completion that came while this process was not running (a starved CPU, a long garbage
    // collection) is delivered in the poll phase of this same loop turn, before immediates run
    // (libuv's loop: timers, then poll, then check): it wins, and only then is the disk looked at.
    const expire = () =>
      setImmediate(() => {
        if (!settled) void check();
      });
    let timer = setTimeout(expire, stallMs);
    // A late result, after the stall was reported, is dropped.
    const settle = (finish: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      finish();
    };
    work.then(
      (value) => settle(() => resolve(value)),
      (error: unknown) => settle(() => reject(error)),
    );
  });
}

function duration(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`;
}
