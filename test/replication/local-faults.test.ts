/*
 * What the client does when its own side misbehaves: a flush that fails in the background, a write
 * still under way (or failing) when the link drops, a disk that stops answering or is merely slow,
 * and a connection that lives through many passes. Each case runs the real agent session and client
 * passes over in-memory links and disks.
 */
import { describe, expect, it } from "vitest";
import { Connection } from "../../src/replication/client-connection.js";
import { runPass } from "../../src/replication/client-pass.js";
import { GROUP_VERIFY, Type, VERSION } from "../../src/replication/codec.js";
import { ioError } from "../../src/replication/errors.js";
import type { ReplicationEvent } from "../../src/replication/index.js";
import { MemoryDisk } from "./memory-disk.js";
import { memoryAgent, replicateFrom, replicateMemory, type MemoryAgent } from "./memory-replication.js";
import { random } from "./random-bytes.js";

const MiB = 2 ** 20;
const LEAF = 64 * 1024;

/**
 * An agent over `source` whose every link is cut once `bytes` of DATA have crossed it; `starts`
 * collects the first leaf of each session's first copy GROUP (where that attempt started).
 */
function cutAfterData(source: MemoryDisk, bytes: number): { agent: MemoryAgent; starts: number[] } {
  const starts: number[] = [];
  const agent = memoryAgent(source, {
    link: (pair) => {
      let data = 0;
      let first: number | undefined;
      return {
        tap: (frame, from) => {
          if (from === "client" && frame[0] === Type.Group && first === undefined && (frame[16]! & GROUP_VERIFY) === 0) {
            first = Number(frame.readBigUInt64BE(6));
            starts.push(first);
          }
          if (from === "agent" && frame[0] === Type.Data && (data += frame.length) > bytes) pair().agent.terminate();
          return frame;
        },
      };
    },
  });
  return { agent, starts };
}

/** Collects why the client reconnected, for a run's `onEvent`. */
function reconnects(reasons: string[]): (event: ReplicationEvent) => void {
  return (event) => {
    if (event.type === "reconnecting") reasons.push(event.reason);
  };
}

describe("the client's own disk", () => {
  it("fails the pass when a background flush failed, though every later flush succeeds", async () => {
    // More than 64 MiB written, so a flush runs in the background; Linux reports a writeback
    // error to a file once, so the final fdatasync succeeds and the cache reads back fine.
    const source = new MemoryDisk(random(80 * MiB, "flush"));
    const target = new MemoryDisk(Buffer.alloc(80 * MiB));
    const flush = target.flush.bind(target);
    let flushes = 0;
    target.flush = async () => {
      flushes += 1;
      if (flushes === 1) throw new Error("EIO: i/o error, fdatasync");
      return flush();
    };
    await expect(replicateMemory(source, target)).rejects.toMatchObject({ code: "IO_ERROR", message: expect.stringContaining("EIO") });
    expect(flushes).toBeGreaterThan(1);
  });

  it("fails the replication when the flush started by the last write of a dropped attempt fails", async () => {
    // The link drops while the write that crosses 64 MiB is under way; that write then starts a
    // background flush, which fails after the retry has begun (and shares the file with it).
    const source = new MemoryDisk(random(80 * MiB, "late"));
    const target = new MemoryDisk(Buffer.alloc(80 * MiB));
    const agent = memoryAgent(source);
    const write = target.write.bind(target);
    let written = 0;
    let cut = false;
    target.write = async (offset, data) => {
      written += data.length;
      if (!cut && written >= 64 * MiB) {
        cut = true;
        agent.pairs[0]!.client.terminate();
        await new Promise((r) => setTimeout(r, 200));
      }
      return write(offset, data);
    };
    let flushes = 0;
    target.flush = async () => {
      flushes += 1;
      if (flushes === 1) {
        await new Promise((r) => setTimeout(r, 1000));
        throw new Error("EIO: i/o error, fdatasync");
      }
    };
    await expect(replicateFrom(agent, target)).rejects.toMatchObject({ code: "IO_ERROR" });
    // The dropped attempt waits for its flush, whose failure is the disk's: no retry over it.
    expect(agent.pairs.length).toBe(1);
  });

  // The link drops while a write (or the scan of a batch) is under way, and it then fails with EIO:
  // a retry would write or read those bytes again over a new link, fine this time, and hide that
  // the disk failed.
  it.each([
    { op: "write", verb: "writing" },
    { op: "read", verb: "reading" },
  ] as const)("ends the run on a $op that fails just after the link dropped, rather than retrying it", async ({ op, verb }) => {
    const source = new MemoryDisk(random(4 * MiB, `${op} eio after cut`));
    const target = new MemoryDisk(Buffer.alloc(4 * MiB), "/dev/sdz");
    const agent = memoryAgent(source);
    let failed = false;
    const failOnce = async (offset: number): Promise<boolean> => {
      if (failed || offset < MiB) return false;
      failed = true;
      agent.pairs[0]!.client.terminate();
      // The link reports its close on the next turn: the connection has failed when the disk does.
      await new Promise((resolve) => setImmediate(resolve));
      throw ioError("client", verb, target.path, offset, Object.assign(new Error(`EIO: i/o error, ${op}`), { code: "EIO" }));
    };
    const write = target.write.bind(target);
    const read = target.read.bind(target);
    if (op === "write") target.write = async (offset, data) => (await failOnce(offset), write(offset, data));
    else target.read = async (offset, length, into) => (await failOnce(offset), read(offset, length, into));
    await expect(replicateFrom(agent, target)).rejects.toMatchObject({ code: "IO_ERROR", message: `client: ${verb} /dev/sdz at 1 MiB: EIO` });
    expect(agent.pairs.length).toBe(1);
  });

  it("lets a write still under way when the link drops land before the retry writes and verifies", async () => {
    const source = new MemoryDisk(random(4 * MiB, "stale"));
    const target = new MemoryDisk(Buffer.alloc(4 * MiB));
    // The first write to the local disk takes 300 ms (a disk busy with writeback).
    const write = target.write.bind(target);
    let writes = 0;
    target.write = async (offset, data) => {
      writes += 1;
      if (writes === 1) await new Promise((r) => setTimeout(r, 300));
      return write(offset, data);
    };
    // The first session drops right after its first DATA frame; the Recovery Instance then
    // rewrites leaf 0, which the retry must be the last to write.
    const agent = memoryAgent(source, {
      onPair: (pair, session) => {
        const send = pair.agent.send.bind(pair.agent);
        pair.agent.send = (frame, onSent) => {
          const queued = send(frame, onSent);
          if (session === 1 && frame[0] === Type.Data) {
            setTimeout(() => {
              pair.agent.terminate();
              random(LEAF, "rewritten").copy(source.bytes, 0);
            }, 5);
          }
          return queued;
        };
      },
    });
    await replicateFrom(agent, target);
    expect(agent.pairs.length).toBe(2);
    expect(target.bytes.equals(source.bytes)).toBe(true);
    await new Promise((r) => setTimeout(r, 400));
    expect(target.bytes.subarray(0, LEAF).equals(source.bytes.subarray(0, LEAF))).toBe(true);
  });
});

describe("an agent that stops answering", () => {
  it("is left after a silence while it owes answers, and the pass ends identical over a new connection", async () => {
    // The agent's disk stops returning reads in the first session (an impaired volume); its event
    // loop still runs, so the link's heartbeat would see nothing wrong.
    const source = new MemoryDisk(random(8 * MiB, "stuck"));
    const target = new MemoryDisk(Buffer.alloc(8 * MiB));
    const read = source.read.bind(source);
    let reads = 0;
    const hung: (() => void)[] = [];
    source.read = async (offset, length, into) => {
      reads += 1;
      if (reads === 3) await new Promise<void>((resolve) => hung.push(resolve));
      return read(offset, length, into);
    };
    const agent = memoryAgent(source);
    const reasons: string[] = [];
    try {
      // Not replicateMemory: the first session cannot close while its read hangs.
      await replicateFrom(agent, target, { stallMs: 300, onEvent: reconnects(reasons) });
    } finally {
      for (const release of hung) release();
    }
    expect(agent.pairs.length).toBe(2);
    expect(reasons).toEqual([expect.stringContaining("the agent sent nothing for")]);
    expect(target.bytes.equals(source.bytes)).toBe(true);
  });

  it("is left when its disk hangs before it answers HELLO, and the next connection goes on", async () => {
    // A 4 MiB volume onto a 3 MiB disk: the agent checks the 1 MiB tail for zeros before READY.
    const source = new MemoryDisk(Buffer.concat([random(3 * MiB, "tail check"), Buffer.alloc(MiB)]));
    const target = new MemoryDisk(Buffer.alloc(3 * MiB));
    const read = source.read.bind(source);
    const hung: (() => void)[] = [];
    source.read = async (offset, length, into) => {
      if (hung.length === 0) await new Promise<void>((resolve) => hung.push(resolve));
      return read(offset, length, into);
    };
    const agent = memoryAgent(source);
    const reasons: string[] = [];
    try {
      await replicateFrom(agent, target, { stallMs: 300, recoveryBytes: 4 * MiB, onEvent: reconnects(reasons) });
    } finally {
      for (const release of hung) release();
    }
    expect(agent.pairs.length).toBe(2);
    expect(reasons).toEqual([expect.stringContaining("the agent sent nothing for")]);
    expect(target.bytes.equals(source.bytes.subarray(0, 3 * MiB))).toBe(true);
  });
});

/**
 * A target (named /dev/sdz) whose reads, writes or flushes stop completing from the `from`-th on, as a
 * dying disk's or a hung USB bridge's do; its close then waits for them, as a FileHandle's does.
 */
function stallingDisk(size: number, op: "read" | "write" | "flush", from: number): MemoryDisk {
  const disk = new MemoryDisk(Buffer.alloc(size), "/dev/sdz");
  const never = new Promise<never>(() => undefined);
  let calls = 0;
  let hung = false;
  const stall =
    <A extends unknown[], R>(real: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      calls += 1;
      if (calls < from) return real(...args);
      hung = true;
      return never;
    };
  if (op === "read") disk.read = stall(disk.read.bind(disk));
  else if (op === "write") disk.write = stall(disk.write.bind(disk));
  else disk.flush = stall(disk.flush.bind(disk));
  disk.close = () => (hung ? never : Promise.resolve());
  return disk;
}

const stalls: { op: "read" | "write" | "flush"; from: number; message: RegExp }[] = [
  { op: "read", from: 2, message: /^client: reading \/dev\/sdz at \d MiB: not completed after 300 ms: the local disk has stopped answering/ },
  { op: "write", from: 3, message: /^client: writing \/dev\/sdz at \d MiB: not completed after 300 ms: the local disk has stopped answering/ },
  { op: "flush", from: 1, message: /^client: flushing \/dev\/sdz: not completed after 300 ms: the local disk has stopped answering/ },
];

describe("a local disk that stops answering", () => {
  // The test's own timeout is the guard against the hang this is about, not a measure of it.
  for (const { op, from, message } of stalls) {
    it(`a ${op} that never completes ends the run with LOCAL_DISK_STALLED, not as the agent's silence`, async () => {
      const source = new MemoryDisk(random(4 * MiB, `stalled ${op}`));
      const target = stallingDisk(4 * MiB, op, from);
      const agent = memoryAgent(source);
      const reasons: string[] = [];
      await expect(replicateFrom(agent, target, { stallMs: 300, onEvent: reconnects(reasons) })).rejects.toMatchObject({ code: "LOCAL_DISK_STALLED", message: expect.stringMatching(message) });
      // Neither retried nor blamed on the link: a new connection would only queue behind the disk.
      expect(reasons).toEqual([]);
      expect(agent.pairs.length).toBe(1);
    }, 20_000);
  }
});

describe("a local disk whose reads stop answering", () => {
  it("in a continuous pass, with read buffers lent to the stuck reads, still ends the run with LOCAL_DISK_STALLED", async () => {
    // Every batch changed on the Recovery Instance: the agent asks for the leaves of each, each
    // request reads, and every read from then on hangs, its buffer possibly still written into: the
    // run must end, not wait for a buffer or a read that will not come.
    const source = new MemoryDisk(random(8 * MiB, "reads stop"));
    const target = new MemoryDisk(Buffer.alloc(8 * MiB), "/dev/sdz");
    const read = target.read.bind(target);
    let reads = 0;
    let hangAfter = Infinity;
    target.read = (offset, length, into) => ((reads += 1) > hangAfter ? new Promise<never>(() => undefined) : read(offset, length, into));
    const run = replicateFrom(memoryAgent(source), target, {
      stallMs: 300,
      continueAfter: (pass) => {
        if (pass !== 1) return false;
        random(8 * MiB, "changed").copy(source.bytes, 0);
        hangAfter = reads + 1;
        return true;
      },
    });
    await expect(run).rejects.toMatchObject({ code: "LOCAL_DISK_STALLED", message: expect.stringMatching(/^client: reading \/dev\/sdz at \d+ MiB: not completed after 300 ms/) });
  }, 20_000);

  it("a cancel while a scan hangs ends the run at once, without waiting to close the disk", async () => {
    const source = new MemoryDisk(random(4 * MiB, "cancel hung"));
    const target = new MemoryDisk(Buffer.alloc(4 * MiB), "/dev/sdz");
    const read = target.read.bind(target);
    const cancel = new AbortController();
    let scans = 0;
    let hung = false;
    const never = new Promise<never>(() => undefined);
    // Like a FileHandle: a close waits for the operation still pending on it.
    const scanning = Object.assign(target, {
      scan: (offset: number, length: number, into?: Buffer) => {
        if ((scans += 1) < 2) return read(offset, length, into);
        hung = true;
        setImmediate(() => cancel.abort());
        return never;
      },
      close: () => (hung ? never : Promise.resolve()),
    });
    // A stall limit far beyond the test's own timeout: only the cancel can end this run.
    await expect(replicateFrom(memoryAgent(source), scanning, { stallMs: 600_000, signal: cancel.signal })).rejects.toMatchObject({ code: "CANCELLED" });
  }, 20_000);
});

describe("a long flush behind a slow disk", () => {
  // fdatasync waits for everything the page cache holds dirty: minutes on a large server behind a
  // slow disk. The disk's counters tell that apart from a stall.
  it("outlasting the limit while the disk goes on completing writes is not a stall", async () => {
    const source = new MemoryDisk(random(4 * MiB, "long flush"));
    let completed = 0;
    const target = Object.assign(new MemoryDisk(Buffer.alloc(4 * MiB), "/dev/sdz"), {
      ioProgress: async () => `${(completed += 1)}`,
    });
    const flush = target.flush.bind(target);
    target.flush = async () => {
      await new Promise((r) => setTimeout(r, 1_000));
      return flush();
    };
    const reasons: string[] = [];
    await replicateMemory(source, target, { stallMs: 200, onEvent: reconnects(reasons) });
    expect(reasons).toEqual([]);
    expect(completed).toBeGreaterThan(1);
    expect(target.bytes.equals(source.bytes)).toBe(true);
  });

  it("that hangs while the disk's counters stand still is a stall, and says so", async () => {
    const source = new MemoryDisk(random(4 * MiB, "hung flush"));
    let asked = 0;
    const target = Object.assign(stallingDisk(4 * MiB, "flush", 1), {
      ioProgress: async () => {
        asked += 1;
        return "4711:90210";
      },
    });
    const agent = memoryAgent(source);
    await expect(replicateFrom(agent, target, { stallMs: 200 })).rejects.toMatchObject({
      code: "LOCAL_DISK_STALLED",
      message: expect.stringMatching(/^client: flushing \/dev\/sdz: not completed after 200 ms, and the disk completed no read or write in the last 50 ms: the local disk has stopped answering/),
    });
    expect(asked).toBe(2);
  }, 20_000);
});

describe("a slow local disk", () => {
  it("whose every write and flush completes within the limit is never taken for a stalled one", async () => {
    // Each write takes 100 ms and each flush 150 ms against a limit of 300 ms: the pass's writes
    // take many times the limit in all, and none alone reaches it.
    const source = new MemoryDisk(random(8 * MiB, "slow but going"));
    const target = new MemoryDisk(Buffer.alloc(8 * MiB), "/dev/sdz");
    const write = target.write.bind(target);
    target.write = async (offset, data) => {
      await new Promise((r) => setTimeout(r, 100));
      return write(offset, data);
    };
    const flush = target.flush.bind(target);
    target.flush = async () => {
      await new Promise((r) => setTimeout(r, 150));
      return flush();
    };
    const reasons: string[] = [];
    await replicateMemory(source, target, { stallMs: 300, onEvent: reconnects(reasons) });
    expect(reasons).toEqual([]);
    expect(target.writes.length).toBeGreaterThanOrEqual(8);
    expect(target.flushes).toBeGreaterThan(0);
    expect(target.bytes.equals(source.bytes)).toBe(true);
  });

  it("is not taken for an agent that stopped answering: the client's own pauses do not count", async () => {
    // Every write takes 40 ms: received data piles up past the landing bound, the client stops
    // reading the link for long stretches, and the agent's frames wait in the link meanwhile.
    const source = new MemoryDisk(random(48 * MiB, "slow-disk"));
    const target = new MemoryDisk(Buffer.alloc(48 * MiB));
    const write = target.write.bind(target);
    target.write = async (offset, data) => {
      await new Promise((r) => setTimeout(r, 40));
      return write(offset, data);
    };
    const reasons: string[] = [];
    // Batches of 16 MiB, 16 in flight (the defaults): enough to fill the landing bound.
    await replicateMemory(source, target, { stallMs: 200, batchLeaves: 256, window: 16, onEvent: reconnects(reasons) });
    expect(reasons).toEqual([]);
    expect(target.bytes.equals(source.bytes)).toBe(true);
  });
});

describe("a long-lived connection", () => {
  it("holds no more waiters after many passes than after one", async () => {
    const source = new MemoryDisk(Buffer.alloc(32 * MiB, 7));
    const target = new MemoryDisk(Buffer.from(source.bytes));
    const { link } = await memoryAgent(source).connect();
    const connection = new Connection(link);
    const ready = new Promise((resolve) => connection.setHandler(resolve));
    connection.send({ type: Type.Hello, version: VERSION, body: { volumes: [{ device: "/dev/xvda", localBytes: target.size }], throttleMbps: 0, codecs: [] } });
    await ready;
    const locals = [{ index: 0, device: "/dev/xvda", sink: target, size: target.size, recoveryBytes: source.size }];
    const known = [new Map<number, Buffer>()];
    const waiters: number[] = [];
    for (let pass = 0; pass < 6; pass += 1) {
      const counts = await runPass(connection, locals, pass === 0 ? "copy" : "continuous", { batchLeaves: 16, window: 16 }, undefined, undefined, pass === 0 ? undefined : known);
      for (const [first, group] of counts[0]!.equalGroups) known[0]!.set(first, group);
      waiters.push(connection.waiters);
    }
    connection.close();
    // 32 batches a pass: before, each left a waiter behind (32 more every pass).
    expect(waiters.every((n) => n === 0)).toBe(true);
  });

  it("a pass whose link drops again and again goes on from where each attempt stopped, past the attempt limit", async () => {
    const source = new MemoryDisk(random(16 * MiB, "drops"));
    const target = new MemoryDisk(Buffer.alloc(16 * MiB));
    const { agent, starts } = cutAfterData(source, 3 * MiB);
    const reasons: string[] = [];
    // Whether the target held the whole volume when progress first said it was all scanned.
    let completeAtFull: boolean | undefined;
    const onReconnect = reconnects(reasons);
    const summary = await replicateFrom(agent, target, {
      onEvent: (e) => {
        onReconnect(e);
        if (e.type === "progress" && completeAtFull === undefined && e.hashedBytes === e.totalBytes) completeAtFull = target.bytes.equals(source.bytes);
      },
    });
    const sessions = agent.pairs.length;
    expect(target.bytes.equals(source.bytes)).toBe(true);
    // A batch scanned again by a later attempt counts once: 100% comes with the last batch, not early.
    expect(completeAtFull).toBe(true);
    // Three attempts at most without progress; with it, as many as the pass needs.
    expect(sessions).toBeGreaterThanOrEqual(5);
    expect(reasons.length).toBe(sessions - 1);
    expect(starts[0]).toBe(0);
    for (let k = 1; k < starts.length; k += 1) expect(starts[k]!).toBeGreaterThan(starts[k - 1]!);
    // Every attempt counts what it sent: all 16 MiB, plus what was in flight at each cut.
    expect(summary.sentBytes).toBeGreaterThanOrEqual(16 * MiB);
    expect(summary.sentBytes).toBeLessThan(16 * MiB + (sessions - 1) * 4 * MiB);
    // The client read its disk once and read back what it wrote (32 MiB), plus, at each cut, the
    // batches then unfinished: at most 4 in flight and 1 read ahead, and 4 being read back (1 MiB
    // each). Reading again from the start at each cut would add about 90 MiB.
    expect(target.readBytes).toBeLessThan(32 * MiB + (sessions - 1) * 9 * MiB);
  });

  it("counts a repair whose verification answer a dropped link cut off", async () => {
    // The disk damages the first write at 1 MiB; the in-pass verification gets it sent again, and
    // the link drops right after that repair, before the answer that ends the verification.
    const source = new MemoryDisk(random(4 * MiB, "repair then cut"));
    const target = new MemoryDisk(Buffer.alloc(4 * MiB));
    let damaged = 0;
    target.damage = (offset, data) => {
      if (offset === MiB && damaged++ === 0) data[10]! ^= 1;
    };
    const agent = memoryAgent(source, {
      onPair: (pair, session) => {
        if (session !== 1) return;
        const send = pair.agent.send.bind(pair.agent);
        pair.agent.send = (frame, onSent) => {
          // BATCH_DONE of a verification GROUP (the batch id's top bit): withheld, and the link cut.
          if (frame[0] === Type.BatchDone && (frame.readUInt32BE(2) & 0x80000000) !== 0 && damaged > 0) {
            setTimeout(() => pair.agent.terminate(), 20);
            return true;
          }
          return send(frame, onSent);
        };
      },
    });
    const verified: number[] = [];
    const summary = await replicateFrom(agent, target, { onEvent: (e) => e.type === "verified" && verified.push(e.mismatchesRepaired) });
    expect(agent.pairs.length).toBe(2);
    expect(target.bytes.equals(source.bytes)).toBe(true);
    expect(summary.mismatchesRepaired).toBe(1);
    expect(verified).toEqual([1]);
  });

  it("counts the zero leaves of a batch done again after a cut once", async () => {
    // Half of each MiB is data, half zeros; a batch cut short after its data landed, before its
    // check was answered, is done again by the next attempt: its zeros counted twice, once.
    const source = new MemoryDisk(Buffer.concat(Array.from({ length: 16 }, (_, k) => Buffer.concat([random(MiB / 2, `half ${k}`), Buffer.alloc(MiB / 2)]))));
    const target = new MemoryDisk(Buffer.alloc(16 * MiB));
    const { agent } = cutAfterData(source, MiB);
    const summary = await replicateFrom(agent, target);
    expect(target.bytes.equals(source.bytes)).toBe(true);
    expect(agent.pairs.length).toBeGreaterThanOrEqual(4);
    expect(summary.skippedZeroBytes).toBe(8 * MiB);
  });

  it("a link that dies while continuous replication waits between passes is replaced, and the run goes on", async () => {
    // The next pass used to start on the dead connection: its work was left rejected with nobody
    // listening, and Node ended the process.
    const source = new MemoryDisk(random(4 * MiB, "between"));
    const target = new MemoryDisk(Buffer.alloc(4 * MiB));
    const agent = memoryAgent(source);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const reasons: string[] = [];
    try {
      await replicateFrom(agent, target, {
        intervalMs: 300,
        onEvent: reconnects(reasons),
        continueAfter: (pass) => {
          if (pass === 1) setTimeout(() => agent.pairs[0]!.agent.terminate(), 50);
          return pass < 3;
        },
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
    expect(unhandled).toEqual([]);
    expect(agent.pairs.length).toBe(2);
    // Replaced before the pass began: no pass failed for it.
    expect(reasons).toEqual([]);
    expect(target.bytes.equals(source.bytes)).toBe(true);
  });

  it("a bandwidth limit changed while a connection opens reaches the agent once it is open", async () => {
    const source = new MemoryDisk(random(2 * MiB, "limit"));
    const target = new MemoryDisk(Buffer.alloc(2 * MiB));
    const agentLog: string[] = [];
    let mbps = 0;
    const agent = memoryAgent(source, {
      log: (line) => agentLog.push(line),
      // READY comes 1.5 s after HELLO (an agent opening its disks), and the limit changes in DRS
      // right after HELLO left with the old one.
      onPair: ({ client }) => {
        const onFrame = client.onFrame.bind(client);
        client.onFrame = (listener) => onFrame((frame) => (frame[0] === Type.Ready ? void setTimeout(() => listener(frame), 1500) : listener(frame)));
        const send = client.send.bind(client);
        client.send = (frame, onSent) => {
          const below = send(frame, onSent);
          if (frame[0] === Type.Hello) mbps = 40;
          return below;
        };
      },
    });
    await replicateFrom(agent, target, { throttleMbps: () => mbps });
    expect(agentLog.some((line) => line.includes("bandwidth limit now 40 Mbps"))).toBe(true);
    expect(target.bytes.equals(source.bytes)).toBe(true);
  });
});
