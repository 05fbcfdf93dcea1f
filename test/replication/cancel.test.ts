/*
 * A cancel (Ctrl-C) ends a run at once, wherever it finds it. Fake timeouts stand for the pause
 * between continuous passes, so a test can tell a run that ended from one that waited it out
 * without measuring time.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { MemoryDisk } from "./memory-disk.js";
import { memoryAgent, replicateFrom } from "./memory-replication.js";
import { random } from "./random-bytes.js";

const MiB = 2 ** 20;

afterEach(() => vi.useRealTimers());

/** Lets the real event loop turn a few times: what a cancel sets off (microtasks, link closes) runs. */
const turns = async (n: number) => {
  for (let k = 0; k < n; k += 1) await new Promise((resolve) => setImmediate(resolve));
};

describe("a cancel", () => {
  it("during the pause between continuous passes ends the run without waiting out the interval", async () => {
    // Only timeouts are fake: the pass runs on real immediates, and the 60 s pause never elapses
    // unless the test advances the clock.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const source = new MemoryDisk(random(2 * MiB, "pause"));
    const target = new MemoryDisk(Buffer.alloc(2 * MiB));
    const cancel = new AbortController();
    let paused!: () => void;
    const pausing = new Promise<void>((resolve) => (paused = resolve));
    const run = replicateFrom(memoryAgent(source), target, {
      intervalMs: 60_000,
      signal: cancel.signal,
      continueAfter: () => {
        paused();
        return true;
      },
    });
    let outcome: unknown = "still running";
    const ended = run.then(
      () => (outcome = "finished"),
      (error: unknown) => (outcome = error),
    );
    await pausing;
    // The run is in its pause: the interval's timeout is pending.
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    cancel.abort();
    await turns(20);
    const before = { outcome, timers: vi.getTimerCount() };
    // Lets a run that still waits for the interval end, so that the test fails rather than hangs.
    await vi.advanceTimersByTimeAsync(60_000);
    await ended;
    // Ended by the cancel itself, its pause cleared: the interval's timeout never fired.
    expect(before).toEqual({ outcome: expect.objectContaining({ code: "CANCELLED" }), timers: 0 });
    expect(target.bytes.equals(source.bytes)).toBe(true);
  });
});
