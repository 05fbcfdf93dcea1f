/*
 * Read buffers with a byte budget. Batches are read into buffers taken from here and given back
 * once hashed (or sent), so memory is bounded by the budget whatever the volume size, and the same
 * few buffers are reused instead of allocating 16 MiB per batch: fresh large Buffers are external
 * memory that the garbage collector notices late and then reclaims in long pauses.
 *
 * Waiters are served first come, first served, so a caller that takes buffers in the order it will
 * give them back cannot deadlock against itself.
 */
export class Slab {
  private inUse = 0;
  private free: Buffer[] = [];
  private waiters: { size: number; wake: () => void }[] = [];

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
    const size = Math.max(bytes, this.unit);
    if (this.waiters.length > 0 || !this.fits(size)) {
      // give() counts this buffer as in use before waking this caller, so no one can overbook.
      await new Promise<void>((wake) => this.waiters.push({ size, wake }));
    } else {
      this.inUse += size;
    }
    // Buffers are never more than the budget: a new one is made only when none is free.
    const buf = size === this.unit ? (this.free.pop() ?? Buffer.allocUnsafeSlow(size)) : Buffer.allocUnsafeSlow(size);
    return buf.subarray(0, bytes);
  }

  give(buf: Buffer): void {
    // Buffers come from allocUnsafeSlow: each owns its whole ArrayBuffer.
    const whole = Buffer.from(buf.buffer, 0, buf.buffer.byteLength);
    this.inUse -= whole.length;
    if (whole.length === this.unit) this.free.push(whole);
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.size)) {
      const next = this.waiters.shift()!;
      this.inUse += next.size;
      next.wake();
    }
  }
}
