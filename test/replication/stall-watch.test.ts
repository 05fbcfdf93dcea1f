/*
 * The client's watch on an agent that owes answers and sends nothing (Connection.watch): silence
 * counts only while this process runs. Fake timers stand for a clock that jumps while the process
 * is not scheduled, which a loaded 2-core machine does for hundreds of milliseconds.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { Connection } from "../../src/replication/client-connection.js";
import { linkPair } from "./memory-link.js";

afterEach(() => vi.useRealTimers());

describe("the stall watch", () => {
  it("does not take a pause of this process for the agent's silence, and still drops a silent agent", () => {
    vi.useFakeTimers();
    const connection = new Connection(linkPair().client);
    const stop = connection.watch(() => true, 200);
    vi.advanceTimersByTime(100);
    // The process sleeps 1 s: the next tick comes late, with frames perhaps waiting unread.
    vi.setSystemTime(Date.now() + 1_000);
    vi.advanceTimersByTime(50);
    expect(connection.failed).toBe(false);
    // Then the agent stays silent for 250 ms of running time: that is a stall.
    vi.advanceTimersByTime(250);
    expect(connection.failed).toBe(true);
    stop();
  });
});
