/*
 * The bandwidth limit's token bucket, on a fake clock: the rate it allows, a limit changed while a
 * frame waits for its turn, and a throttle cancelled because its session ended.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Throttle } from "../../src/replication/throttle.js";

const MiB = 2 ** 20;

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Whether `promise` has settled once pending callbacks have run, without moving the clock. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await vi.advanceTimersByTimeAsync(0);
  return done;
}

describe("throttle", () => {
  it("makes a 1 MiB frame wait as long as 8 Mbps says", async () => {
    const throttle = new Throttle(8);
    const frame = throttle.take(MiB);
    // 1 MiB at 1 MB/s, less the tenth of a second's burst it starts with: about 0.95 s.
    await vi.advanceTimersByTimeAsync(900);
    expect(await settled(frame)).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(await settled(frame)).toBe(true);
  });

  it("works out a waiting frame's turn again at a lower limit", async () => {
    const throttle = new Throttle(80);
    const frame = throttle.take(2 * MiB);
    // At 10 MB/s it would go after about 0.11 s (its burst covers the rest); at 1 MB/s, 1.1 s.
    throttle.setRate(8);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await settled(frame)).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    expect(await settled(frame)).toBe(true);
  });

  it.each([
    ["the limit is lifted", (t: Throttle) => t.setRate(0)],
    ["the throttle is cancelled (its session ended)", (t: Throttle) => t.cancel()],
  ] as const)("lets a frame waiting at 1 Mbps go at once, and every later one, when %s", async (_, release) => {
    const throttle = new Throttle(1);
    const frame = throttle.take(MiB);
    await vi.advanceTimersByTimeAsync(100);
    expect(await settled(frame)).toBe(false);
    release(throttle);
    expect(await settled(frame)).toBe(true);
    expect(await settled(throttle.take(100 * MiB))).toBe(true);
  });

  it("once cancelled, stays open when a limit comes afterwards", async () => {
    const throttle = new Throttle(1);
    throttle.cancel();
    throttle.setRate(1);
    expect(await settled(throttle.take(100 * MiB))).toBe(true);
  });
});
