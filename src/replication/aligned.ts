/*
 * Page-aligned buffers, for direct I/O. O_DIRECT wants the memory, not only the file offset,
 * aligned to the device's DMA alignment (512 bytes on the virtio and loop devices here), and Node's
 * large Buffers come from malloc, 16 bytes past a page boundary: the kernel refuses direct reads
 * into them (EINVAL) wherever data is mapped (holes are zero-filled without DMA, so sparse scans
 * got away with it). A WebAssembly memory's buffer starts on a page boundary by construction.
 *
 * V8 reserves (does not commit) about 10 GiB of address space for each WebAssembly memory, so a
 * few long-lived arenas are made (slab.ts), never one per read.
 */

/** WebAssembly.Memory, absent under `--jitless` (the project's TypeScript libs do not declare it). */
type MemoryConstructor = new (pages: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer };
const Memory = (globalThis as { WebAssembly?: { Memory?: MemoryConstructor } }).WebAssembly?.Memory;

const aligned = new WeakSet<ArrayBufferLike>();

/** A zero-filled buffer of `bytes` starting on a page boundary; a plain one where that cannot be had. */
export function alignedBuffer(bytes: number): Buffer {
  if (!Memory || bytes === 0) return Buffer.alloc(bytes);
  const pages = Math.ceil(bytes / 65536);
  let memory;
  try {
    memory = new Memory({ initial: pages, maximum: pages });
  } catch {
    // Beyond what V8 will reserve (4 GiB a memory, about 1 TiB of address space in all).
    return Buffer.alloc(bytes);
  }
  aligned.add(memory.buffer);
  return Buffer.from(memory.buffer, 0, bytes);
}

/** Whether `buf` starts at a multiple of `to` bytes in memory (known only for `alignedBuffer`'s). */
export function isAligned(buf: Buffer, to: number): boolean {
  return aligned.has(buf.buffer) && buf.byteOffset % to === 0;
}
