import { describe, expect, it } from "vitest";
import { Codec } from "../../src/replication/codec.js";
import { CodecChoice } from "../../src/replication/codec-choice.js";

/**
 * Drives a chooser with a link that moves `rate(compressing, now)` volume bytes per second, in
 * 1 MiB frames, for `ms` milliseconds, with `ahead` frames already packed between the chooser and
 * the wire (the agent's outbox, a bandwidth limit): a frame leaves as it was packed. Returns how
 * many frames left, how many of them compressed, and how many stretches of raw frames followed a
 * compressed one.
 */
function drive(choice: CodecChoice, start: number, ms: number, rate: (compressing: boolean, now: number) => number, { backlogged = true, ahead = 0 } = {}): { frames: number; compressed: number; rawStretches: number; end: number } {
  let now = start;
  let frames = 0;
  let compressed = 0;
  let rawStretches = 0;
  let previous: Codec | null = null;
  const queue: Codec[] = [];
  while (queue.length < ahead) queue.push(choice.next(now, backlogged));
  while (now < start + ms) {
    queue.push(choice.next(now, backlogged));
    const c = queue.shift()!;
    frames += 1;
    if (c !== Codec.Raw) compressed += 1;
    if (c === Codec.Raw && previous === Codec.Brotli) rawStretches += 1;
    previous = c;
    now += (2 ** 20 / rate(c !== Codec.Raw, now)) * 1000;
    choice.sent(2 ** 20, now, backlogged, c);
  }
  return { frames, compressed, rawStretches, end: now };
}

describe("codec choice", () => {
  it("keeps compressing on a slow wire where it moves more volume per second", () => {
    const choice = new CodecChoice(0, Codec.Brotli);
    // 120 MB/s raw; compressed frames carry 3x the volume per wire byte, CPU caps them at 250 MB/s.
    const { compressed, end } = drive(choice, 0, 2000, (c) => (c ? 250e6 : 120e6));
    expect(choice.next(end, true)).toBe(Codec.Brotli);
    expect(compressed).toBeGreaterThan(0);
  });

  it("goes back to raw where compressing moves less (a busy receiver, a slow CPU)", () => {
    const choice = new CodecChoice(0, Codec.Brotli);
    const { compressed, end } = drive(choice, 0, 3000, (c) => (c ? 60e6 : 100e6));
    expect(compressed).toBeGreaterThan(0);
    expect(choice.next(end, true)).toBe(Codec.Raw);
  });

  it("never tries on a path that already moves more than compression could (loopback)", () => {
    const choice = new CodecChoice(0, Codec.Brotli);
    const { compressed } = drive(choice, 0, 2000, (c) => (c ? 900e6 : 300e6));
    expect(compressed).toBe(0);
  });

  it("is not led into compressing by one slow moment of a fast path (the receiver flushing)", () => {
    const choice = new CodecChoice(0, Codec.Brotli);
    // 300 MB/s raw, except 100 MB/s from 1.2 s to 1.8 s; compressing caps the path at 150 MB/s.
    const slow = (now: number) => now >= 1200 && now < 1800;
    const { compressed } = drive(choice, 0, 8000, (c, now) => (c ? 150e6 : slow(now) ? 100e6 : 300e6));
    expect(compressed).toBe(0);
  });

  it("is not led into compressing by a slow start of a fast path (the pipeline filling)", () => {
    const choice = new CodecChoice(0, Codec.Brotli);
    // 100 MB/s for the first 700 ms, 300 MB/s after; compressing caps the path at 150 MB/s.
    const { compressed } = drive(choice, 0, 8000, (c, now) => (c ? 150e6 : now < 700 ? 100e6 : 300e6));
    expect(compressed).toBe(0);
  });

  it("never tries while frames do not queue (this side is the bottleneck)", () => {
    const choice = new CodecChoice(0, Codec.Brotli);
    const { compressed } = drive(choice, 0, 2000, (c) => (c ? 250e6 : 120e6), { backlogged: false });
    expect(compressed).toBe(0);
  });

  it("never compresses for a client that accepts no codec, however slow the link", () => {
    const choice = new CodecChoice(0, null);
    const { compressed } = drive(choice, 0, 4000, (c) => (c ? 250e6 : 10e6));
    expect(compressed).toBe(0);
  });

  it.each([0, 7])("judges each mode by its own frames, not those packed before it (%i frames ahead of the wire)", (ahead) => {
    // An 8 Mbps limit (1 MB/s raw; compressed frames move 4.8x the volume through it). Seven
    // frames packed ahead are seconds of data at that rate: a raw window measured over the
    // compressed frames still queued after a hold would take their rate for raw's, and the next
    // trial, measured over raw frames, would look slower than "raw".
    const choice = new CodecChoice(0, Codec.Brotli);
    const { frames, compressed, rawStretches } = drive(choice, 0, 300_000, (c) => (c ? 4.8e6 : 1e6), { ahead });
    expect(compressed).toBeGreaterThan(0.9 * frames);
    // One raw window per re-test, nothing more: holds of 8, 16, 32 and 64 s, then 64 s each.
    expect(rawStretches).toBeLessThan(10);
  });

  it("measures raw afresh when it tests its choice again: a path that became fast goes back to raw", () => {
    const choice = new CodecChoice(0, Codec.Brotli);
    const { end } = drive(choice, 0, 20_000, (c) => (c ? 48e6 : 10e6));
    expect(choice.next(end, true)).toBe(Codec.Brotli);
    // The path now moves 300 MB/s raw (the receiver's pace), more than compressing allows.
    const { compressed, end: later } = drive(choice, end, 120_000, (c) => (c ? 100e6 : 300e6));
    expect(choice.next(later, true)).toBe(Codec.Raw);
    // At most the rest of the hold went compressed: 16 s (the first re-test confirmed it) at 100 MB/s.
    expect(compressed).toBeLessThan(1600);
  });

  it("starts over, raw, when the path is changed under it (a bandwidth limit lifted)", () => {
    const choice = new CodecChoice(0, Codec.Brotli);
    const { end } = drive(choice, 0, 20_000, (c) => (c ? 48e6 : 10e6));
    expect(choice.next(end, true)).toBe(Codec.Brotli);
    choice.reset(end);
    expect(choice.next(end, true)).toBe(Codec.Raw);
    const { compressed } = drive(choice, end, 30_000, (c) => (c ? 150e6 : 300e6));
    expect(compressed).toBe(0);
  });

  it("tests a choice that re-tests keep confirming less and less often", () => {
    const choice = new CodecChoice(0, Codec.Brotli);
    const { rawStretches, end } = drive(choice, 0, 130_000, (c) => (c ? 250e6 : 120e6));
    expect(choice.next(end, true)).toBe(Codec.Brotli);
    // Each re-test sends a raw window. Every eight seconds would be 14 of them; holds of 8, 16, 32
    // and 64 s make 4 or 5.
    expect(rawStretches).toBeGreaterThan(2);
    expect(rawStretches).toBeLessThan(7);
  });
});
