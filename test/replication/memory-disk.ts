/*
 * An in-memory disk for engine tests: a block source and sink over a Buffer that counts what is
 * read and written, keeps a log of writes, and can be told to damage a write (a disk that lies) so
 * that the verification has something to find.
 */
import type { BlockSink } from "../../src/replication/index.js";

export class MemoryDisk implements BlockSink {
  readonly path: string;
  readBytes = 0;
  writtenBytes = 0;
  flushes = 0;
  readonly writes: { offset: number; length: number }[] = [];
  /** Called on each write with a copy of the data about to land; may change it. */
  damage: ((offset: number, data: Buffer) => void) | null = null;

  constructor(
    readonly bytes: Buffer,
    name = "memory",
  ) {
    this.path = name;
  }

  get size(): number {
    return this.bytes.length;
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const end = Math.min(this.bytes.length, offset + length);
    const out = into ?? Buffer.alloc(length);
    const n = Math.max(0, end - offset);
    this.bytes.copy(out, 0, offset, end);
    this.readBytes += n;
    return n === out.length ? out : out.subarray(0, n);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (offset + data.length > this.bytes.length) throw new Error(`write beyond the disk: ${offset}+${data.length}`);
    const landing = Buffer.from(data);
    this.damage?.(offset, landing);
    landing.copy(this.bytes, offset);
    this.writtenBytes += data.length;
    this.writes.push({ offset, length: data.length });
  }

  async flush(): Promise<void> {
    this.flushes += 1;
  }

  async close(): Promise<void> {}
}
