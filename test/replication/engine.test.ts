/*
 * The engine without sockets (after diskrsync's sync_test.go): the agent's session and the client's
 * passes over an in-memory link pair, between in-memory disks that count what they read and write.
 * Each case asserts the result byte for byte and how many bytes crossed the link.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { decode, Type } from "../../src/replication/codec.js";
import { MemoryDisk } from "./memory-disk.js";
import { random } from "./random-bytes.js";
import type { Counts } from "./memory-link.js";
import { replicateMemory } from "./memory-replication.js";

const KiB = 1024;
const MiB = 2 ** 20;
const LEAF = 64 * KiB;

/** A volume: random data in the first half of each MiB, zeros in the second. */
function volume(bytes: number, seed: string): Buffer {
  const out = Buffer.alloc(bytes);
  for (let at = 0; at < bytes; at += MiB) random(Math.min(MiB / 2, bytes - at), `${seed}${at}`).copy(out, at);
  return out;
}

/** Text-like bytes: brotli shrinks them several times. */
function text(bytes: number): Buffer {
  const words = ["volume", "failback", "recovery", "instance", "replication", "block", "agent", "client"];
  let s = "";
  for (let i = 0; s.length < bytes; i += 1) s += `${words[(i * 7) % words.length]} ${i} ${words[(i * 3) % words.length]};\n`;
  return Buffer.from(s.slice(0, bytes));
}

const wire = (c: Counts) => c.toAgent + c.toClient;

/** A blank disk on which the first `times` writes that cover byte `at` land with it flipped. */
function lyingDisk(size: number, at: number, times: number): { disk: MemoryDisk; lies: () => number } {
  const disk = new MemoryDisk(Buffer.alloc(size));
  let lied = 0;
  disk.damage = (offset, data) => {
    const k = at - offset;
    if (lied < times && k >= 0 && k < data.length) {
      data.writeUInt8(data.readUInt8(k) ^ 0xff, k);
      lied += 1;
    }
  };
  return { disk, lies: () => lied };
}
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("engine over in-memory disks and link", () => {
  it("identical disks: no data crosses, digests stay far below 0.1% of the volume", async () => {
    const source = new MemoryDisk(volume(8 * MiB, "same"));
    const target = new MemoryDisk(Buffer.from(source.bytes));
    const progress: { equal: number; zero: number; hashed: number }[] = [];
    const { summary, counts } = await replicateMemory(source, target, {
      onEvent: (e) => e.type === "progress" && progress.push({ equal: e.skippedEqualBytes, zero: e.skippedZeroBytes, hashed: e.hashedBytes }),
    });
    expect(summary.sentBytes).toBe(0);
    expect(target.writtenBytes).toBe(0);
    expect(summary.skippedEqualBytes).toBe(4 * MiB);
    expect(summary.skippedZeroBytes).toBe(4 * MiB);
    // Counted as each batch is settled, not only at the end, and never more than was scanned.
    expect(progress.slice(0, -1).some((p) => p.equal > 0 && p.hashed < 8 * MiB)).toBe(true);
    expect(progress.every((p) => p.equal + p.zero <= p.hashed)).toBe(true);
    expect(progress.at(-1)).toEqual({ equal: 4 * MiB, zero: 4 * MiB, hashed: 8 * MiB });
    // HELLO + READY, then one 49-byte GROUP and one 6-byte BATCH_DONE per 1 MiB batch.
    expect(wire(counts)).toBeLessThan(0.001 * 8 * MiB);
    expect(summary.wireBytes).toBe(wire(counts));
  });

  it("blank target: the non-zero data crosses once, without leaf digests, and is verified", async () => {
    const source = new MemoryDisk(volume(8 * MiB, "blank"));
    const target = new MemoryDisk(Buffer.alloc(8 * MiB));
    const { summary, counts } = await replicateMemory(source, target);
    expect(sha(target.bytes)).toBe(sha(source.bytes));
    expect(summary.sentBytes).toBe(4 * MiB);
    expect(summary.skippedZeroBytes).toBe(4 * MiB);
    expect(summary.mismatchesRepaired).toBe(0);
    expect(target.writtenBytes).toBe(4 * MiB);
    // The agent read the source once: no re-read for the answer, none for the verification.
    expect(source.readBytes).toBe(8 * MiB);
    // The client read its disk once, and read back (verification) exactly the leaves it wrote.
    expect(target.readBytes).toBe(8 * MiB + 4 * MiB);
    // Client -> agent: GROUPs only (an all-zero batch needs no leaf digests).
    expect(counts.toAgent).toBeLessThan(2 * KiB);
    // Agent -> client: the data, plus 21 bytes of header per run of up to 16 leaves.
    expect(counts.toClient).toBeGreaterThanOrEqual(4 * MiB);
    expect(counts.toClient).toBeLessThan(4 * MiB + 4 * KiB);
  });

  it("1% of leaves changed: only they cross, within 1.05x the changed bytes + 0.1% of the volume", async () => {
    const source = new MemoryDisk(volume(16 * MiB, "one"));
    const target = new MemoryDisk(Buffer.from(source.bytes));
    const changed = [3, 40, 41, 130, 255];
    for (const leaf of changed) random(LEAF, `changed${leaf}`).copy(target.bytes, leaf * LEAF);
    const { summary, counts } = await replicateMemory(source, target);
    expect(sha(target.bytes)).toBe(sha(source.bytes));
    // Leaves 40, 41 and 255 are in zero halves of the source: they travel as ZERO counts.
    expect(summary.sentBytes).toBe(2 * LEAF);
    expect(target.writtenBytes).toBe(changed.length * LEAF);
    expect(wire(counts)).toBeLessThan(1.05 * changed.length * LEAF + 0.001 * 16 * MiB + 2 * 16 * 32 * 4);
    // Read once, then only the five leaves written were read back for the verification.
    expect(target.readBytes).toBe(16 * MiB + changed.length * LEAF);
  });

  it("grown target: the recovery volume lands at the start, the rest is left alone", async () => {
    const source = new MemoryDisk(volume(4 * MiB, "grow"));
    const target = new MemoryDisk(Buffer.alloc(6 * MiB, 0x5a));
    const { summary, counts } = await replicateMemory(source, target, { recoveryBytes: 4 * MiB });
    expect(sha(target.bytes.subarray(0, 4 * MiB))).toBe(sha(source.bytes));
    expect(target.bytes.subarray(4 * MiB).every((b) => b === 0x5a)).toBe(true);
    expect(summary.totalBytes).toBe(4 * MiB);
    // Every leaf differs: the half that is data crosses once, the zero half as counts.
    expect(summary.sentBytes).toBe(2 * MiB);
    expect(wire(counts)).toBeLessThan(1.01 * 2 * MiB + 0.001 * 4 * MiB + 4 * KiB);
    expect(target.writes.every((w) => w.offset + w.length <= 4 * MiB)).toBe(true);
  });

  it("an agent serving a volume of another size than the plan's is refused before anything is written", async () => {
    // A --volume naming another disk: 64 KiB short, the last leaf was left stale and counted equal.
    // One leaf longer, zero there: the tail check passes, the size check must not. 4 MiB longer,
    // data there: the tail check would have read it all and blamed the local disk's size.
    for (const [served, beyond] of [[4 * MiB - LEAF, 0], [4 * MiB + LEAF, 0], [8 * MiB, 0x77]] as [number, number][]) {
      const source = new MemoryDisk(Buffer.concat([volume(Math.min(served, 4 * MiB), "size"), Buffer.alloc(Math.max(0, served - 4 * MiB), beyond)]));
      const target = new MemoryDisk(Buffer.alloc(4 * MiB, 0x5a));
      await expect(replicateMemory(source, target, { recoveryBytes: 4 * MiB })).rejects.toMatchObject({
        code: "VOLUME_SIZE_MISMATCH",
        message: expect.stringContaining(`/dev/xvda is served from memory (${served} bytes), but the Recovery Instance's volume is ${4 * MiB} bytes: --volume /dev/xvda=PATH names another disk`),
      });
      expect(target.writtenBytes).toBe(0);
    }
  });

  it("fractional tail, all zeros: accepted, the local size is filled, a short last leaf included", async () => {
    const local = 3 * MiB + 5 * KiB;
    const bytes = Buffer.alloc(4 * MiB);
    volume(local, "frac").copy(bytes);
    bytes.fill(7, local - 100, local);
    const source = new MemoryDisk(bytes);
    const target = new MemoryDisk(Buffer.alloc(local));
    const { summary, counts } = await replicateMemory(source, target);
    expect(sha(target.bytes)).toBe(sha(source.bytes.subarray(0, local)));
    expect(summary.totalBytes).toBe(local);
    // The data of three 1 MiB stretches (half of each) and the short last leaf; nothing beyond.
    expect(summary.sentBytes).toBe(1.5 * MiB + 5 * KiB);
    expect(wire(counts)).toBeLessThan(1.01 * summary.sentBytes + 0.001 * 4 * MiB + 4 * KiB);
    // The source beyond the local size is read twice: when the session opens (to refuse before
    // any data moves) and with the last batch (what the pass ends with; a first pass takes hours).
    expect(source.readBytes).toBe(local + 2 * (4 * MiB - local));
  });

  it("fractional tail, not all zeros: refused with TAIL_NOT_ZERO, nothing written", async () => {
    const bytes = volume(4 * MiB, "frac2");
    const source = new MemoryDisk(bytes);
    const target = new MemoryDisk(Buffer.alloc(3 * MiB));
    await expect(replicateMemory(source, target)).rejects.toMatchObject({ code: "TAIL_NOT_ZERO" });
    expect(target.writtenBytes).toBe(0);
  });

  // Twice: the pass's own verification finds the leaf, then the verification pass after it.
  it.each([
    ["a write: the verification finds it, repairs it and reports it", 1],
    ["a write and its first repair: a verification pass repairs it again, and both count", 2],
  ])("a disk that damages %s", async (_, times) => {
    const source = new MemoryDisk(volume(4 * MiB, `lie ${times}`));
    const { disk: target, lies } = lyingDisk(4 * MiB, 2 * MiB + 100, times);
    const { summary } = await replicateMemory(source, target);
    expect(lies()).toBe(times);
    expect(summary.mismatchesRepaired).toBe(times);
    // The data (the half of each MiB that is not zeros) and each repair's leaf: what crossed.
    expect(summary.sentBytes).toBe(2 * MiB + times * LEAF);
    expect(sha(target.bytes)).toBe(sha(source.bytes));
  });

  it("a disk that damages a zero run: the read-back finds the leaf is not zeros, and it is repaired", async () => {
    // The agent's leaf is all zeros where the local one holds data: it crosses as a ZERO run.
    const source = new MemoryDisk(volume(4 * MiB, "zero run"));
    const target = new MemoryDisk(random(4 * MiB, "old data"));
    const at = 2 * MiB + 600 * KiB;
    expect(source.bytes.subarray(at - 100, at + 100).equals(Buffer.alloc(200))).toBe(true);
    let lied = 0;
    target.damage = (offset, data) => {
      if (lied === 0 && offset <= at && offset + data.length > at && data.equals(Buffer.alloc(data.length))) {
        data[at - offset] = 0x5a;
        lied += 1;
      }
    };
    const { summary } = await replicateMemory(source, target);
    expect(lied).toBe(1);
    expect(summary.mismatchesRepaired).toBe(1);
    expect(sha(target.bytes)).toBe(sha(source.bytes));
  });

  it("with two volumes, the verified event of each counts its own repairs", async () => {
    const sources = [new MemoryDisk(volume(2 * MiB, "va")), new MemoryDisk(volume(2 * MiB, "vb"))];
    const targets = [new MemoryDisk(Buffer.alloc(2 * MiB)), lyingDisk(2 * MiB, 100, 1).disk];
    const verified: [string, number][] = [];
    const { summary } = await replicateMemory(sources, targets, { onEvent: (e) => e.type === "verified" && verified.push([e.volume, e.mismatchesRepaired]) });
    expect(verified).toEqual([["/dev/xvda", 0], ["/dev/xvdb", 1]]);
    expect(summary.mismatchesRepaired).toBe(1);
    expect(targets.map((t, i) => t.bytes.equals(sources[i]!.bytes))).toEqual([true, true]);
  });

  it("a disk that damages every write: the verification gives up with VERIFY_MISMATCH", async () => {
    const source = new MemoryDisk(volume(2 * MiB, "bad"));
    const target = new MemoryDisk(Buffer.alloc(2 * MiB));
    target.damage = (offset, data) => {
      if (offset <= 100 && offset + data.length > 100) data.writeUInt8(data.readUInt8(100 - offset) ^ 1, 100 - offset);
    };
    await expect(replicateMemory(source, target)).rejects.toMatchObject({ code: "VERIFY_MISMATCH" });
  });

  it("a leaf rewritten on the agent between its hash and its sending: sent as it now is, and the verification agrees at once", async () => {
    // A running Recovery Instance writes while a pass runs: the agent hashes a batch, asks for the
    // client's leaf digests, and reads the differing leaves again to send them. What it sends is
    // what the client's verification will read back; the batch's group must be made of it.
    const source = new (class extends MemoryDisk {
      reads = 0;
      override async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
        const out = await super.read(offset, length, into);
        // Just after the read that hashed leaf 20, the application rewrites it.
        if (offset <= 20 * LEAF && offset + length > 20 * LEAF && (this.reads += 1) === 1) random(LEAF, "rewritten").copy(this.bytes, 20 * LEAF);
        return out;
      }
    })(volume(4 * MiB, "live"));
    const target = new MemoryDisk(Buffer.from(source.bytes));
    random(LEAF, "stale").copy(target.bytes, 20 * LEAF);
    const { summary } = await replicateMemory(source, target);
    // Read twice (hashed, then sent) and no more: the verification agreed without a third look.
    expect(source.reads).toBe(2);
    expect(summary.mismatchesRepaired).toBe(0);
    expect(summary.sentBytes).toBe(LEAF);
    expect(sha(target.bytes)).toBe(sha(source.bytes));
  });

  it("a corrupted frame is detected and nothing corrupt lands on disk; the retry completes", async () => {
    const source = new MemoryDisk(volume(4 * MiB, "corrupt"));
    const target = new MemoryDisk(Buffer.alloc(4 * MiB));
    let damaged = 0;
    const tap = (frame: Buffer, from: "client" | "agent") => {
      if (from === "agent" && damaged === 0 && frame[0] === Type.Data) {
        damaged += 1;
        const copy = Buffer.from(frame);
        copy.writeUInt8(copy.readUInt8(copy.length - 10) ^ 0x40, copy.length - 10);
        return copy;
      }
      return frame;
    };
    const landed: Buffer[] = [];
    target.damage = (offset, data) => {
      // Every write must be the source's bytes at that offset.
      if (!data.equals(source.bytes.subarray(offset, offset + data.length))) landed.push(data);
    };
    const { connections } = await replicateMemory(source, target, { link: { tap } });
    expect(damaged).toBe(1);
    expect(connections).toBe(2);
    expect(landed).toEqual([]);
    expect(sha(target.bytes)).toBe(sha(source.bytes));
  });

  it("compression: used on a slow link when it pays, skipped for random data, and the result is exact", async () => {
    const size = 64 * MiB;
    const compressible = new MemoryDisk(text(size));
    const incompressible = new MemoryDisk(random(size, "rnd"));
    // About 32 MB/s: frames queue up in the sender, as on a slow network; the agent measures the
    // rate raw (a second), tries compressing, and keeps it where it moves more volume per second.
    const slow = { bytesPerMs: 32 * KiB };
    const kinds = { text: compressible, random: incompressible };
    const frames: Record<string, { codecs: number[]; wire: number }> = {};
    for (const [name, source] of Object.entries(kinds)) {
      const target = new MemoryDisk(Buffer.alloc(size));
      const codecs: number[] = [];
      const tap = (frame: Buffer, from: "client" | "agent") => {
        if (from === "agent" && frame[0] === Type.Data) {
          const f = decode(frame);
          if (f.type === Type.Data) codecs.push(f.codec);
        }
        return frame;
      };
      const { summary, counts } = await replicateMemory(source, target, { link: { ...slow, tap }, compression: true, window: 16 });
      expect(sha(target.bytes)).toBe(sha(source.bytes));
      expect(summary.sentBytes).toBe(size);
      frames[name] = { codecs, wire: counts.toClient };
    }
    expect(frames.text!.codecs).toContain(1);
    // The first frames go raw, until the agent has measured that compressing pays.
    expect(frames.text!.wire).toBeLessThan(size * 0.9);
    expect(frames.random!.codecs.every((c) => c === 0)).toBe(true);
    expect(frames.random!.wire).toBeGreaterThanOrEqual(size);
  });

  it("compression refused by the client: the agent sends raw bytes even on a slow link", async () => {
    const source = new MemoryDisk(text(8 * MiB));
    const target = new MemoryDisk(Buffer.alloc(8 * MiB));
    const { counts } = await replicateMemory(source, target, { link: { bytesPerMs: 32 * KiB }, compression: false, window: 16 });
    expect(sha(target.bytes)).toBe(sha(source.bytes));
    expect(counts.toClient).toBeGreaterThanOrEqual(8 * MiB);
  });
});
