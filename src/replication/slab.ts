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
  private waiters: { bytes: number; wake: () => void }[] = [];

  constructor(private readonly budget: number) {}

  private fits(bytes: number): boolean {
    // One request larger than the whole budget still proceeds, alone.
    return this.inUse === 0 || this.inUse + bytes <= this.budget;
  }

  async take(bytes: number): Promise<Buffer> {
    if (this.waiters.length > 0 || !this.fits(bytes)) {
      // give() counts these bytes as in use before waking this caller, so no one can overbook.
      await new Promise<void>((wake) => this.waiters.push({ bytes, wake }));
    } else {
      this.inUse += bytes;
    }
    const i = this.free.findIndex((b) => b.length >= bytes);
    const buf = i >= 0 ? this.free.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(bytes);
    return buf.length === bytes ? buf : buf.subarray(0, bytes);
  }

  give(buf: Buffer): void {
    this.inUse -= buf.length;
    // Buffers come from allocUnsafeSlow: each owns its whole ArrayBuffer, kept for reuse.
    const whole = Buffer.from(buf.buffer, 0, buf.buffer.byteLength);
    if (this.free.reduce((a, b) => a + b.length, 0) + whole.length <= this.budget) this.free.push(whole);
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.bytes)) {
      const next = this.waiters.shift()!;
      this.inUse += next.bytes;
      next.wake();
    }
  }
}
