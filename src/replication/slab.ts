/*
 * Read buffers with a byte budget. Batches are read into buffers taken from here and given back
 * once hashed (or sent), so memory is bounded by the budget whatever the volume size, and the same
 * few buffers are reused instead of allocating 16 MiB per batch: fresh large Buffers are external
 * memory that the garbage collector notices late and then reclaims in long pauses.
 *
 * Waiters are served first come, first served, so a caller that takes buffers in the order it will
 * give them back cannot deadlock against itself.
 *
 * The unit buffers are cut from one page-aligned arena (aligned.ts), so that a scan can read into
 * them with O_DIRECT; a slab is meant to live as long as its session or replication.
 */
import { alignedBuffer } from "./aligned.js";

/** The largest arena: a WebAssembly memory holds at most 4 GiB, and each is made in one piece. */
const MAX_ARENA = 2 ** 30;

export class Slab {
  private inUse = 0;
  private free: Buffer[] = [];
  /** Every unit buffer there can be at once, made on the first take; `carved` of them handed out so far. */
  private arena: Buffer | null = null;
  private carved = 0;
  /** Bytes counted for each buffer that is not a unit of the arena, by its memory. */
  private readonly own = new Map<ArrayBufferLike, number>();
  private waiters: { size: number; wake: () => void; fail: (error: Error) => void }[] = [];
  /** Why the slab was closed: every take fails with it from then on. */
  private closed: Error | null = null;

  /**
   * `budget` bytes in all, in buffers of `unit` bytes (the usual batch) so that any free buffer
   * serves any request up to a unit: a short first or last batch takes a whole unit. A request
   * larger than a unit gets a buffer of its own, which is not kept.
   */
  constructor(
    private readonly budget: number,
    private readonly unit: number,
  ) {}

  private fits(size: number): boolean {
    // One request larger than the whole budget still proceeds, alone.
    return this.inUse === 0 || this.inUse + size <= this.budget;
  }

  async take(bytes: number): Promise<Buffer> {
    if (this.closed) throw this.closed;
    const size = Math.max(bytes, this.unit);
    if (this.waiters.length > 0 || !this.fits(size)) {
      // give() counts this buffer as in use before waking this caller, so no one can overbook.
      await new Promise<void>((wake, fail) => this.waiters.push({ size, wake, fail }));
    } else {
      this.inUse += size;
    }
    // Buffers are never more than the budget: a new one is cut only when none is free.
    let buf: Buffer;
    try {
      buf = (size === this.unit ? this.free.pop() : undefined) ?? this.cut(size);
    } catch (error) {
      this.release(size);
      throw error;
    }
    return buf.subarray(0, bytes);
  }

  /**
   * The arena's next unit (budget / unit of them, at least one, within MAX_ARENA: beyond, units of
   * their own, not aligned, whose scans read through the page cache); a larger buffer of its own.
   */
  private cut(size: number): Buffer {
    this.arena ??= alignedBuffer(Math.max(1, Math.min(Math.floor(this.budget / this.unit), Math.floor(MAX_ARENA / this.unit))) * this.unit);
    const at = this.carved * this.unit;
    if (size === this.unit && at + size <= this.arena.length) {
      this.carved += 1;
      return this.arena.subarray(at, at + size);
    }
    const buf = size === this.unit ? Buffer.allocUnsafeSlow(size) : alignedBuffer(size);
    this.own.set(buf.buffer, size);
    return buf;
  }

  /**
   * Ends the slab for a run that is over: whoever waits for a buffer, and whoever asks for one from
   * now on, gets `error`. For a disk that stopped answering: the buffers lent to its reads may never
   * come back, and a take waiting for them would hold the run's end for ever.
   */
  close(error: Error): void {
    this.closed ??= error;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.fail(this.closed);
  }

  give(buf: Buffer): void {
    // A closed slab lends nothing again, so it keeps nothing: a read that never returned may still
    // write into this buffer.
    if (this.closed) return;
    // A unit goes back to the free list whole, however much of it the caller kept using.
    const arena = this.arena;
    const own = this.own.get(buf.buffer);
    if (arena !== null && buf.buffer === arena.buffer) {
      const at = Math.floor((buf.byteOffset - arena.byteOffset) / this.unit) * this.unit;
      this.free.push(arena.subarray(at, at + this.unit));
      this.release(this.unit);
    } else if (own === this.unit) {
      this.free.push(Buffer.from(buf.buffer, 0, this.unit));
      this.release(this.unit);
    } else {
      this.own.delete(buf.buffer);
      this.release(own ?? buf.length);
    }
  }

  /** `size` bytes of the budget are free again: waiters that now fit go, first come first. */
  private release(size: number): void {
    this.inUse -= size;
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.size)) {
      const next = this.waiters.shift()!;
      this.inUse += next.size;
      next.wake();
    }
  }
}
