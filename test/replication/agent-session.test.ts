/*
 * The agent's session on its own, driven frame by frame by a scripted client over an in-memory
 * link: how a session ends (its client gone, a volume failing), what its DATA frames hold on to,
 * and a client that sends what no honest one would.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Codec, decode, encode, LEAF_SIZE, Type, VERSION, type Frame } from "../../src/replication/codec.js";
import { serveSession } from "../../src/replication/agent-session.js";
import { zeroGroup } from "../../src/replication/leaves.js";
import type { FrameLink } from "../../src/replication/link.js";
import type { BlockSource } from "../../src/replication/volume-file.js";
import type { WriteTracker } from "../../src/replication/write-tracker.js";
import { MemoryDisk } from "./memory-disk.js";
import { linkPair } from "./memory-link.js";

const MiB = 2 ** 20;

/** Resolves with `promise`, or rejects once `ms` have passed: a hang fails the test, it does not stall it. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * A session serving `sources` (as vol0, vol1, ...) to a scripted client: it sends frames and waits
 * for the agent's. `wrap` may stand between the session and its end of the link.
 */
function session(sources: BlockSource[], wrap: (link: FrameLink) => FrameLink = (link) => link) {
  const pair = linkPair();
  const received: Frame[] = [];
  const waiters: { wanted: (f: Frame) => boolean; wake: (f: Frame) => void }[] = [];
  pair.client.onFrame((data) => {
    const frame = decode(data);
    received.push(frame);
    for (const w of waiters.filter((w) => w.wanted(frame))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.wake(frame);
    }
  });
  const clientClosed = new Promise<void>((resolve) => pair.client.onClose(() => resolve()));
  const logs: string[] = [];
  const done = serveSession(wrap(pair.agent), {
    volumes: sources.map((source, i) => ({ deviceName: `vol${i}`, path: source.path, open: async () => source })),
    log: (line) => logs.push(line),
    who: "test",
  });
  const send = (frame: Frame) => pair.client.send(encode(frame));
  const waitFor = (wanted: (f: Frame) => boolean, what: string) =>
    within(new Promise<Frame>((wake) => {
      const got = received.find(wanted);
      if (got) wake(got);
      else waiters.push({ wanted, wake });
    }), 10_000, what);
  const hello = (body: Record<string, unknown>) => {
    send({ type: Type.Hello, version: VERSION, body });
    return waitFor((f) => f.type === Type.Ready || f.type === Type.Error, "READY");
  };
  /** The volume bytes of the DATA received so far. */
  const dataBytes = () => received.reduce((sum, f) => sum + (f.type === Type.Data ? f.rawLength : 0), 0);
  return { pair, received, logs, done, send, waitFor, hello, dataBytes, clientClosed };
}

/** A blank client's GROUP for leaves first..first+count of a volume (its batch named by its first leaf). */
const blankGroup = (volume: number, first: number, count: number, flags = 0): Frame => ({ type: Type.Group, volume, batch: first, first, count, flags, digest: zeroGroup(count, LEAF_SIZE) });

describe("a session whose client is gone", () => {
  it("stops at once: the answers still queued are neither read, nor paced by the bandwidth limit, nor counted as sent", async () => {
    // 64 MiB of data for a blank client, four 16 MiB batches at 16 Mbps: over 30 s of answers.
    const disk = new MemoryDisk(randomBytes(64 * MiB));
    const s = session([disk]);
    expect((await s.hello({ volumes: [{ device: "vol0", localBytes: disk.size }], throttleMbps: 16, codecs: [] })).type).toBe(Type.Ready);
    for (let b = 0; b < 4; b += 1) s.send(blankGroup(0, b * 256, 256, b === 0 ? 2 : 0));
    await s.waitFor((f) => f.type === Type.Data, "the first DATA");
    const readAtClose = disk.readBytes;
    s.pair.client.terminate();
    const { sentBytes } = await within(s.done, 90_000, "the session's end");
    // At most a batch being read as the link closed; the two batches waiting for the read budget are never read.
    expect(disk.readBytes - readAtClose).toBeLessThan(16 * MiB);
    // What the log calls "data sent": at most the frame on its way as the link closed, beyond what arrived.
    expect(sentBytes).toBeLessThanOrEqual(s.dataBytes() + MiB);
    expect(sentBytes).toBeGreaterThan(0);
  });
});

describe("a session's compression", () => {
  it("starts measuring over when the bandwidth limit changes: the frames packed after it go raw", async () => {
    // Log text, compressible several times over, sent to a blank client under a 40 Mbps limit:
    // frames held by the limit count as a backlog, so the agent tries compressing, and keeps it.
    let text = "";
    for (let i = 0; text.length < 128 * MiB; i += 1) text += `line ${i} volume ${(i * 7919) % 10007} replicated block ${i % 97} ok\n`;
    const disk = new MemoryDisk(Buffer.from(text.slice(0, 128 * MiB)));
    const s = session([disk]);
    expect((await s.hello({ volumes: [{ device: "vol0", localBytes: disk.size }], throttleMbps: 40, codecs: ["brotli"] })).type).toBe(Type.Ready);
    for (let b = 0; b < 8; b += 1) s.send(blankGroup(0, b * 256, 256, b === 0 ? 2 : 0));
    await s.waitFor((f) => f.type === Type.Data && f.codec !== Codec.Raw, "a compressed DATA frame");
    // A new limit: what was measured under the old one no longer holds, so the agent sends raw
    // again to measure the path. Only the frames already packed (the outbox, one in the throttle)
    // may still come compressed; without the reset compressing would hold for 8 s (50-odd frames).
    const before = s.received.length;
    s.send({ type: Type.Throttle, mbps: 80 });
    const after = () => s.received.slice(before).filter((f): f is Extract<Frame, { type: Type.Data }> => f.type === Type.Data);
    await s.waitFor((f) => f.type === Type.Data && f.codec === Codec.Raw && s.received.indexOf(f) >= before, "a raw DATA frame after THROTTLE");
    expect(after().findIndex((f) => f.codec === Codec.Raw)).toBeLessThan(10);
    s.pair.client.terminate();
    await within(s.done, 30_000, "the session's end");
  });
});

describe("a session that fails", () => {
  it("closes the write tracker of another volume whose pass was still starting when the failure came", async () => {
    const events: string[] = [];
    // vol0 cannot be read (EIO).
    const bad = new MemoryDisk(randomBytes(4 * MiB), "bad");
    bad.read = () => Promise.reject(Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" }));
    // vol1's tracker (a tracefs instance and its `cat`, for real) is started only once the failure
    // has closed the link: the session's cleanup has begun by then.
    let startTracker!: () => void;
    const trackerMayStart = new Promise<void>((resolve) => (startTracker = resolve));
    const tracker: WriteTracker = {
      working: true,
      settle: async () => undefined,
      written: () => true,
      reading: () => undefined,
      backlog: () => 0,
      close: async () => void events.push("tracker closed"),
    };
    const good = Object.assign(new MemoryDisk(randomBytes(4 * MiB), "good"), {
      trackWrites: async () => {
        await trackerMayStart;
        events.push("tracker started");
        return { tracker };
      },
      close: async () => void events.push("source closed"),
    });
    const s = session([bad, good]);
    expect((await s.hello({ volumes: [{ device: "vol0", localBytes: bad.size }, { device: "vol1", localBytes: good.size }], codecs: [] })).type).toBe(Type.Ready);
    s.send(blankGroup(0, 0, 16, 2));
    s.send(blankGroup(1, 0, 16, 2));
    const error = await s.waitFor((f) => f.type === Type.Error, "the ERROR");
    expect(error.type === Type.Error && error.body.message).toMatch(/EIO/);
    await within(s.clientClosed, 10_000, "the link's close");
    startTracker();
    await within(s.done, 10_000, "the session's end");
    // The session resolves only once everything it opened is closed, the late tracker included.
    expect(events).toEqual(["tracker started", "tracker closed", "source closed"]);
  });
});

describe("DATA frames", () => {
  it("hold no more memory than about their own length, which is what the link's queue counts", async () => {
    // Every other leaf is zero: the answer to a blank client is DATA runs of one leaf (64 KiB).
    const bytes = randomBytes(4 * MiB);
    for (let leaf = 1; leaf < 64; leaf += 2) bytes.fill(0, leaf * LEAF_SIZE, (leaf + 1) * LEAF_SIZE);
    const disk = new MemoryDisk(bytes);
    const held: { length: number; memory: number }[] = [];
    const s = session([disk], (link) => ({
      send: (frame, onSent) => {
        if (frame[0] === Type.Data) held.push({ length: frame.length, memory: frame.buffer.byteLength });
        return link.send(frame, onSent);
      },
      ready: () => link.ready(),
      get backlog() {
        return link.backlog;
      },
      onFrame: (listener) => link.onFrame(listener),
      onClose: (listener) => link.onClose(listener),
      pause: () => link.pause(),
      resume: () => link.resume(),
      close: () => link.close(),
      terminate: () => link.terminate(),
    }));
    expect((await s.hello({ volumes: [{ device: "vol0", localBytes: disk.size }], codecs: [] })).type).toBe(Type.Ready);
    s.send(blankGroup(0, 0, 64, 2));
    await s.waitFor((f) => f.type === Type.BatchDone, "BATCH_DONE");
    expect(held).toHaveLength(32);
    for (const frame of held) expect(frame.memory).toBeLessThanOrEqual(2 * frame.length);
    s.pair.client.close();
    await within(s.done, 10_000, "the session's end");
  });
});

describe("a client that sends what no honest one would", () => {
  it("a 65,470-character device name: refused with a short UNKNOWN_VOLUME, and the session ends cleanly", async () => {
    const s = session([new MemoryDisk(Buffer.alloc(MiB))]);
    const name = "x".repeat(65_470);
    const answer = await s.hello({ volumes: [{ device: name, localBytes: MiB }], codecs: [] });
    expect(answer.type).toBe(Type.Error);
    if (answer.type !== Type.Error) return;
    expect(answer.body.code).toBe("UNKNOWN_VOLUME");
    expect(answer.body.message).toMatch(/^agent: this Recovery Instance has no volume "x{199}…" \(it serves vol0\)$/);
    // The link closed (the session resolves only then), and the process lives on.
    await within(s.done, 10_000, "the session's end");
    expect(s.logs.every((line) => line.length < 2048)).toBe(true);
  });
});
