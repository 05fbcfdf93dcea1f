import { describe, expect, it } from "vitest";
import { CodecChoice } from "../../src/replication/codec-choice.js";

/**
 * Drives a chooser with a link that takes `rawRate(compressing)` volume bytes per second, in 1 MiB
 * frames, for `ms` milliseconds; returns how many frames were compressed.
 */
function drive(choice: CodecChoice, start: number, ms: number, rate: (compressing: boolean, now: number) => number, backlogged = true): { compressed: number; end: number } {
  let now = start;
  let compressed = 0;
  while (now < start + ms) {
    const c = choice.compress(now, backlogged);
    if (c) compressed += 1;
    now += (2 ** 20 / rate(c, now)) * 1000;
    choice.sent(2 ** 20, now, backlogged);
  }
  return { compressed, end: now };
}

describe("codec choice", () => {
  it("keeps compressing on a slow wire where it moves more volume per second", () => {
    const choice = new CodecChoice(0);
    // 120 MB/s raw; compressed frames carry 3x the volume per wire byte, CPU caps them at 250 MB/s.
    const { compressed, end } = drive(choice, 0, 2000, (c) => (c ? 250e6 : 120e6));
    expect(choice.compress(end, true)).toBe(true);
    expect(compressed).toBeGreaterThan(0);
  });

  it("goes back to raw where compressing moves less (a busy receiver, a slow CPU)", () => {
    const choice = new CodecChoice(0);
    const { compressed, end } = drive(choice, 0, 3000, (c) => (c ? 60e6 : 100e6));
    expect(compressed).toBeGreaterThan(0);
    expect(choice.compress(end, true)).toBe(false);
  });

  it("never tries on a path that already moves more than compression could (loopback)", () => {
    const choice = new CodecChoice(0);
    const { compressed } = drive(choice, 0, 2000, (c) => (c ? 900e6 : 300e6));
    expect(compressed).toBe(0);
  });

  it("is not led into compressing by one slow moment of a fast path (the receiver flushing)", () => {
    const choice = new CodecChoice(0);
    // 300 MB/s raw, except 100 MB/s from 1.2 s to 1.8 s; compressing caps the path at 150 MB/s.
    const slow = (now: number) => now >= 1200 && now < 1800;
    const { compressed } = drive(choice, 0, 8000, (c, now) => (c ? 150e6 : slow(now) ? 100e6 : 300e6));
    expect(compressed).toBe(0);
  });

  it("is not led into compressing by a slow start of a fast path (the pipeline filling)", () => {
    const choice = new CodecChoice(0);
    // 100 MB/s for the first 700 ms, 300 MB/s after; compressing caps the path at 150 MB/s.
    const { compressed } = drive(choice, 0, 8000, (c, now) => (c ? 150e6 : now < 700 ? 100e6 : 300e6));
    expect(compressed).toBe(0);
  });

  it("never tries while frames do not queue (this side is the bottleneck)", () => {
    const choice = new CodecChoice(0);
    const { compressed } = drive(choice, 0, 2000, (c) => (c ? 250e6 : 120e6), false);
    expect(compressed).toBe(0);
  });
});
