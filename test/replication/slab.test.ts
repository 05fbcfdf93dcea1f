/*
 * The read buffers' budget and their arena: units are page-aligned (for O_DIRECT), reused whole,
 * and the budget comes back exactly, whatever part of a buffer the caller gives back; a closed slab
 * lends and keeps nothing.
 */
import { describe, expect, it } from "vitest";
import { isAligned } from "../../src/replication/aligned.js";
import { Slab } from "../../src/replication/slab.js";

const MiB = 2 ** 20;
const settled = async (p: Promise<unknown>) => Promise.race([p.then(() => true), new Promise((r) => setImmediate(() => r(false)))]);

describe("slab", () => {
  it("cuts page-aligned units from one arena and reuses a unit given back in part", async () => {
    const slab = new Slab(3 * MiB, MiB);
    const [a, b, c] = await Promise.all([slab.take(MiB), slab.take(MiB), slab.take(MiB / 2)]);
    for (const buf of [a!, b!, c!]) expect(isAligned(buf, 4096)).toBe(true);
    expect(a!.buffer).toBe(b!.buffer);
    expect(new Set([a!.byteOffset, b!.byteOffset, c!.byteOffset]).size).toBe(3);
    // The budget is spent: the next take waits until a buffer comes back, even a part of one.
    const next = slab.take(MiB);
    expect(await settled(next)).toBe(false);
    slab.give(b!.subarray(0, 1000));
    const reused = await next;
    expect(reused.byteOffset).toBe(b!.byteOffset);
    expect(reused.length).toBe(MiB);
  });

  it("once closed (a disk that stopped answering), fails waiting and later takes, and keeps nothing given back", async () => {
    const slab = new Slab(2 * MiB, MiB);
    const [a, b] = await Promise.all([slab.take(MiB), slab.take(MiB)]);
    const waiting = slab.take(MiB);
    const stalled = new Error("the disk stalled");
    slab.close(stalled);
    await expect(waiting).rejects.toBe(stalled);
    await expect(slab.take(MiB)).rejects.toBe(stalled);
    // A buffer a read that never returned may still write into is never lent again.
    slab.give(a!);
    slab.give(b!);
    await expect(slab.take(MiB)).rejects.toBe(stalled);
    expect((slab as unknown as { free: Buffer[] }).free).toEqual([]);
  });

  it("gives a request larger than a unit a buffer of its own, and counts exactly what it took", async () => {
    const slab = new Slab(4 * MiB, MiB);
    const big = await slab.take(2 * MiB + 5);
    expect(big.length).toBe(2 * MiB + 5);
    expect(isAligned(big, 4096)).toBe(true);
    const unit = await slab.take(MiB);
    expect(big.buffer).not.toBe(unit.buffer);
    // 3 MiB + 5 in use: another unit does not fit until the large one is back.
    const waiting = slab.take(MiB);
    expect(await settled(waiting)).toBe(false);
    slab.give(big.subarray(0, 10));
    await waiting;
    // Back to 2 MiB in use: two more units fit at once.
    expect(await settled(Promise.all([slab.take(MiB), slab.take(MiB)]))).toBe(true);
  });

  it("lets one request through alone when it is larger than the whole budget", async () => {
    const slab = new Slab(MiB / 2, MiB);
    const first = await slab.take(MiB);
    const second = slab.take(MiB);
    expect(await settled(second)).toBe(false);
    slab.give(first);
    expect((await second).byteOffset).toBe(first.byteOffset);
  });

  it("cuts at most 1 GiB of arena, in one piece: beyond, units of their own, reused too", async () => {
    // 80 units of 64 MiB: a WebAssembly memory holds at most 4 GiB, so an arena for a budget
    // like this one (86 volumes and more at 48 MiB each) failed to be made at all. Nothing here is
    // touched, so nothing is committed.
    const unit = 64 * MiB;
    const slab = new Slab(80 * unit, unit);
    const units = await Promise.all(Array.from({ length: 17 }, () => slab.take(unit)));
    expect(units.slice(0, 16).every((u) => isAligned(u, 4096) && u.buffer === units[0]!.buffer)).toBe(true);
    const beyond = units[16]!;
    expect(beyond.buffer).not.toBe(units[0]!.buffer);
    slab.give(beyond);
    expect((await slab.take(unit)).buffer).toBe(beyond.buffer);
  });
});
