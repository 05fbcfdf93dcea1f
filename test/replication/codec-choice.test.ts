import { describe, expect, it } from "vitest";
import { Codec } from "../../src/replication/codec.js";
import { CodecChoice } from "../../src/replication/codec-choice.js";

/**
 * Drives a chooser with a link that moves `rate(codec, now)` volume bytes per second, in 1 MiB
 * frames, for `ms` milliseconds; returns how many frames were compressed, and with which codec.
 */
function drive(choice: CodecChoice, start: number, ms: number, rate: (codec: Codec, now: number) => number, backlogged = true): { compressed: number; lz4: number; brotli: number; end: number } {
  let now = start;
  const frames = { compressed: 0, lz4: 0, brotli: 0 };
  while (now < start + ms) {
    const c = choice.next(now, backlogged);
    if (c !== Codec.Raw) frames.compressed += 1;
    if (c === Codec.Lz4) frames.lz4 += 1;
    if (c === Codec.Brotli) frames.brotli += 1;
    now += (2 ** 20 / rate(c, now)) * 1000;
    choice.sent(2 ** 20, now, backlogged, c);
  }
  return { ...frames, end: now };
}

/**
 * Like `drive`, with `ahead` frames already packed between the chooser and the wire, as in the
 * agent's outbox and behind a bandwidth limit: a frame leaves with the codec it was packed with.
 */
function driveQueued(choice: CodecChoice, ms: number, rate: (codec: Codec) => number, ahead: number): { lz4: number; brotli: number } {
  const queue: Codec[] = [];
  const frames = { lz4: 0, brotli: 0 };
  let now = 0;
  while (queue.length < ahead) queue.push(choice.next(now, true));
  while (now < ms) {
    queue.push(choice.next(now, true));
    const c = queue.shift()!;
    if (c === Codec.Lz4) frames.lz4 += 1;
    if (c === Codec.Brotli) frames.brotli += 1;
    now += (2 ** 20 / rate(c)) * 1000;
    choice.sent(2 ** 20, now, true, c);
  }
  return frames;
}

/** A link whose wire carries `wire` bytes/s and whose CPU lets each codec reach `cpu` volume bytes/s;
 * text shrinks 3.2x with LZ4 and 4.8x with brotli (as measured on the bench's text). */
function path(wire: number, cpu: { lz4: number; brotli: number }) {
  return (codec: Codec) => (codec === Codec.Raw ? wire : codec === Codec.Lz4 ? Math.min(wire * 3.2, cpu.lz4) : Math.min(wire * 4.8, cpu.brotli));
}

describe("codec choice", () => {
  it("keeps compressing on a slow wire where it moves more volume per second", () => {
    const choice = new CodecChoice(0, [Codec.Brotli]);
    // 120 MB/s raw; compressed frames carry 3x the volume per wire byte, CPU caps them at 250 MB/s.
    const { compressed, lz4, end } = drive(choice, 0, 2000, (c) => (c !== Codec.Raw ? 250e6 : 120e6));
    expect(choice.next(end, true)).toBe(Codec.Brotli);
    expect(compressed).toBeGreaterThan(0);
    // Only what the client accepts: this one (an older client) named brotli alone.
    expect(lz4).toBe(0);
  });

  it("goes back to raw where compressing moves less (a busy receiver, a slow CPU)", () => {
    const choice = new CodecChoice(0, [Codec.Brotli]);
    const { compressed, end } = drive(choice, 0, 3000, (c) => (c !== Codec.Raw ? 60e6 : 100e6));
    expect(compressed).toBeGreaterThan(0);
    expect(choice.next(end, true)).toBe(Codec.Raw);
  });

  it("never tries on a path that already moves more than compression could (loopback)", () => {
    const choice = new CodecChoice(0, [Codec.Brotli]);
    const { compressed } = drive(choice, 0, 2000, (c) => (c !== Codec.Raw ? 900e6 : 300e6));
    expect(compressed).toBe(0);
  });

  it("is not led into compressing by one slow moment of a fast path (the receiver flushing)", () => {
    const choice = new CodecChoice(0, [Codec.Brotli]);
    // 300 MB/s raw, except 100 MB/s from 1.2 s to 1.8 s; compressing caps the path at 150 MB/s.
    const slow = (now: number) => now >= 1200 && now < 1800;
    const { compressed } = drive(choice, 0, 8000, (c, now) => (c !== Codec.Raw ? 150e6 : slow(now) ? 100e6 : 300e6));
    expect(compressed).toBe(0);
  });

  it("is not led into compressing by a slow start of a fast path (the pipeline filling)", () => {
    const choice = new CodecChoice(0, [Codec.Brotli]);
    // 100 MB/s for the first 700 ms, 300 MB/s after; compressing caps the path at 150 MB/s.
    const { compressed } = drive(choice, 0, 8000, (c, now) => (c !== Codec.Raw ? 150e6 : now < 700 ? 100e6 : 300e6));
    expect(compressed).toBe(0);
  });

  it("never tries while frames do not queue (this side is the bottleneck)", () => {
    const choice = new CodecChoice(0, [Codec.Brotli]);
    const { compressed } = drive(choice, 0, 2000, (c) => (c !== Codec.Raw ? 250e6 : 120e6), false);
    expect(compressed).toBe(0);
  });

  it("keeps LZ4 where the CPU limits the rate: brotli is tried and moves less", () => {
    // A 1 Gbit/s link: the CPU caps LZ4 at 240 MB/s of volume and brotli at 160 MB/s.
    const choice = new CodecChoice(0, [Codec.Lz4, Codec.Brotli]);
    const { lz4, brotli, end } = drive(choice, 0, 6000, path(118e6, { lz4: 240e6, brotli: 160e6 }));
    expect(brotli).toBeGreaterThan(0);
    expect(lz4).toBeGreaterThan(brotli);
    expect(choice.next(end, true)).toBe(Codec.Lz4);
  });

  it("keeps brotli where the wire limits the rate: it moves the most volume per wire byte", () => {
    // A 200 Mbit/s link with CPU to spare: LZ4 moves 80 MB/s of volume, brotli 120 MB/s.
    const choice = new CodecChoice(0, [Codec.Lz4, Codec.Brotli]);
    const { lz4, brotli, end } = drive(choice, 0, 6000, path(25e6, { lz4: 450e6, brotli: 300e6 }));
    expect(lz4).toBeGreaterThan(0);
    expect(brotli).toBeGreaterThan(lz4);
    expect(choice.next(end, true)).toBe(Codec.Brotli);
  });

  it("does not try brotli when LZ4 already moves less than raw (a starved CPU)", () => {
    const choice = new CodecChoice(0, [Codec.Lz4, Codec.Brotli]);
    const { lz4, brotli, end } = drive(choice, 0, 3000, (c) => (c === Codec.Raw ? 100e6 : c === Codec.Lz4 ? 60e6 : 40e6));
    expect(lz4).toBeGreaterThan(0);
    expect(brotli).toBe(0);
    expect(choice.next(end, true)).toBe(Codec.Raw);
  });

  it("tests its choice again, and follows a path whose limit moved from the wire to the CPU", () => {
    const choice = new CodecChoice(0, [Codec.Lz4, Codec.Brotli]);
    const slowWire = path(25e6, { lz4: 450e6, brotli: 300e6 });
    const { end } = drive(choice, 0, 6000, slowWire);
    expect(choice.next(end, true)).toBe(Codec.Brotli);
    // The link got faster (another route, a lifted limit): now the CPU limits brotli.
    const { end: later } = drive(choice, end, 20_000, path(118e6, { lz4: 240e6, brotli: 160e6 }));
    expect(choice.next(later, true)).toBe(Codec.Lz4);
  });

  it("never compresses for a client that accepts no codec, however slow the link", () => {
    const choice = new CodecChoice(0, []);
    const { compressed } = drive(choice, 0, 4000, path(10e6, { lz4: 450e6, brotli: 300e6 }));
    expect(compressed).toBe(0);
  });

  it("tests a choice that re-tests keep confirming less and less often", () => {
    // Brotli is only ever sent during a re-test's trial, here: count them over two minutes.
    const choice = new CodecChoice(0, [Codec.Lz4, Codec.Brotli]);
    const { brotli, lz4, end } = drive(choice, 0, 130_000, path(118e6, { lz4: 240e6, brotli: 160e6 }));
    expect(choice.next(end, true)).toBe(Codec.Lz4);
    // A trial is about 90 such frames (0.6 s at 160 MB/s). Every eight seconds would be 13 trials;
    // holds of 8, 16, 32 and 64 s make 5.
    expect(brotli / 90).toBeGreaterThan(3);
    expect(brotli / 90).toBeLessThan(7);
    expect(lz4).toBeGreaterThan(20 * brotli);
  });

  it.each([8, 20, 80])("judges each trial by its own frames, not those packed before it: a %i Mbps limit keeps brotli", (mbps) => {
    // Seven frames wait between the chooser and the wire (the outbox, the throttle): at 8 Mbps,
    // seven seconds of raw frames. Brotli moves 1.5x LZ4's volume through any limit.
    const choice = new CodecChoice(0, [Codec.Lz4, Codec.Brotli]);
    const { lz4, brotli } = driveQueued(choice, 200_000, path((mbps * 1e6) / 8, { lz4: 450e6, brotli: 300e6 }), 7);
    expect(brotli).toBeGreaterThan(4 * lz4);
    expect(choice.next(200_000, true)).toBe(Codec.Brotli);
  });

  it("measures raw afresh when it tests its choice again: a path that became fast goes back to raw", () => {
    const choice = new CodecChoice(0, [Codec.Lz4, Codec.Brotli]);
    const { end } = drive(choice, 0, 20_000, path(10e6, { lz4: 450e6, brotli: 300e6 }));
    expect(choice.next(end, true)).toBe(Codec.Brotli);
    // The path now moves 300 MB/s raw (the receiver's pace), more than either codec's CPU allows.
    const fast = (c: Codec) => (c === Codec.Raw ? 300e6 : c === Codec.Lz4 ? 150e6 : 100e6);
    const { compressed, end: later } = drive(choice, end, 120_000, fast);
    expect(choice.next(later, true)).toBe(Codec.Raw);
    // At most the rest of the hold went compressed: 16 s (the first re-test confirmed brotli) at 100 MB/s.
    expect(compressed).toBeLessThan(1600);
  });

  it("starts over, raw, when the path is changed under it (a bandwidth limit lifted)", () => {
    const choice = new CodecChoice(0, [Codec.Lz4, Codec.Brotli]);
    const { end } = drive(choice, 0, 20_000, path(10e6, { lz4: 450e6, brotli: 300e6 }));
    expect(choice.next(end, true)).toBe(Codec.Brotli);
    choice.reset(end);
    expect(choice.next(end, true)).toBe(Codec.Raw);
    const { compressed } = drive(choice, end, 30_000, (c) => (c === Codec.Raw ? 300e6 : 150e6));
    expect(compressed).toBe(0);
  });
});
