/* A token bucket for the failback replication configuration's bandwidth limit (Mbps; 0 = none). */
export class Throttle {
  private readonly bytesPerSecond: number;
  private available: number;
  private last = Date.now();

  constructor(mbps: number) {
    this.bytesPerSecond = (mbps * 1_000_000) / 8;
    // At most a tenth of a second's worth in one burst, so short runs cannot exceed the limit.
    this.available = this.bytesPerSecond / 10;
  }

  async take(bytes: number): Promise<void> {
    if (this.bytesPerSecond <= 0) return;
    const now = Date.now();
    this.available = Math.min(this.bytesPerSecond / 10, this.available + ((now - this.last) / 1000) * this.bytesPerSecond);
    this.last = now;
    this.available -= bytes;
    if (this.available < 0) await new Promise((r) => setTimeout(r, (-this.available / this.bytesPerSecond) * 1000));
  }
}
