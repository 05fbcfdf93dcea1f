/*
 * Continuous replication with a source that can tell whether it was written (a block device's
 * write counters, an image file's times): passes over an unchanged source read nothing on the
 * agent, and a write is still found and sent by the next pass. In-memory disks and link.
 */
import { describe, expect, it } from "vitest";
import { decode, GROUP_VERIFY, Type } from "../../src/replication/codec.js";
import { MemoryDisk } from "./memory-disk.js";
import { random } from "./random-bytes.js";
import { memoryAgent, replicateFrom, replicateMemory, type AgentOptions, type ClientOptions } from "./memory-replication.js";

const MiB = 2 ** 20;

/** A memory disk whose writes (made by the test, as an application would) bump a counter. */
class CountedDisk extends MemoryDisk {
  writesSeen = 0;
  stamped = true;
  async changeStamp(): Promise<string | undefined> {
    return this.stamped ? String(this.writesSeen) : undefined;
  }
  change(offset: number, data: Buffer): void {
    data.copy(this.bytes, offset);
    this.writesSeen += 1;
  }
}

/**
 * Runs continuous replication until `script` returns false, calling it after every pass. At the
 * engine's own window (16), and without retries unless a test asks: a dropped link fails it.
 */
async function continuous(sources: MemoryDisk | MemoryDisk[], targets: MemoryDisk | MemoryDisk[], script: (pass: number) => boolean | Promise<boolean>, options: AgentOptions & ClientOptions = {}): Promise<void> {
  await replicateMemory(sources, targets, { window: 16, attempts: 1, continueAfter: script, ...options });
}

describe("continuous replication: change detection", () => {
  it("goes straight to the final pass when the launch comes while it waits between passes", async () => {
    const source = new MemoryDisk(random(2 * MiB, "launch"));
    const target = new MemoryDisk(Buffer.alloc(2 * MiB));
    const finish = new AbortController();
    const agent = memoryAgent(source);
    const passes: string[] = [];
    await replicateFrom(agent, target, {
      mode: "continuous",
      finishSignal: finish.signal,
      intervalMs: 300,
      onEvent: (e) => {
        if (e.type !== "pass-complete") return;
        passes.push(`${e.pass} ${e.phase}`);
        // The launch, 100 ms into the 300 ms pause after the copy.
        if (e.pass === 1) setTimeout(() => finish.abort(), 100);
      },
    });
    await agent.settled();
    // Without the check after the pause, a continuous pass trusting what it knew ran first: 1, 2, 3.
    expect(passes).toEqual(["1 copy", "2 continuous"]);
  });

  it("reports the lag of the first continuous pass from the start of the copy: the local disks are as old as what it read", async () => {
    // A Recovery Instance's slow disk: the copy takes a while, and the data it brought is that old.
    const source = new (class extends MemoryDisk {
      slow = true;
      override async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
        if (this.slow) await new Promise((resolve) => setTimeout(resolve, 80));
        return super.read(offset, length, into);
      }
    })(random(8 * MiB, "lag"));
    const target = new MemoryDisk(Buffer.alloc(8 * MiB));
    const started = Date.now();
    let copySeconds = 0;
    const lags: number[] = [];
    await continuous(
      source,
      target,
      (pass) => {
        if (pass === 1) copySeconds = (Date.now() - started) / 1000;
        source.slow = false;
        return pass < 2;
      },
      { onEvent: (e) => e.type === "progress" && e.phase === "continuous" && e.lagSeconds !== undefined && lags.push(e.lagSeconds) },
    );
    expect(copySeconds).toBeGreaterThanOrEqual(0.6);
    // At least most of the copy (the test's clock also counts the set-up before it); counted from
    // the copy's end instead, it would be the 10 ms between passes and a little.
    expect(lags[0]).toBeGreaterThanOrEqual(copySeconds / 2);
  });

  it("reads nothing on the agent while the source is unchanged, and finds the next write", async () => {
    const source = new CountedDisk(random(8 * MiB, "src"));
    const target = new MemoryDisk(Buffer.alloc(8 * MiB));
    const readAt: number[] = [];
    await continuous(source, target, async (pass) => {
      readAt[pass] = source.readBytes;
      if (pass === 4) source.change(5 * MiB + 12_345, random(100_000, "app write"));
      return pass < 6;
    });
    // Pass 1 read the source once; passes 2-4 found it unchanged and read nothing.
    expect(readAt[1]).toBe(8 * MiB);
    expect(readAt[4]).toBe(readAt[1]);
    // The write after pass 4 made pass 5 read the source again, and it arrived.
    expect(readAt[5]! - readAt[4]!).toBeGreaterThanOrEqual(8 * MiB);
    expect(readAt[6]).toBe(readAt[5]);
    expect(target.bytes.equals(source.bytes)).toBe(true);
  });

  it("the client reads again only the batches that changed on the agent, and all of them at the launch", async () => {
    const source = new CountedDisk(random(8 * MiB, "client side"));
    const target = new MemoryDisk(Buffer.alloc(8 * MiB));
    const readAt: number[] = [];
    const writtenAt: number[] = [];
    await continuous(source, target, async (pass) => {
      readAt[pass] = target.readBytes;
      writtenAt[pass] = target.writtenBytes;
      if (pass === 3) source.change(5 * MiB + 12_345, random(100_000, "app write 2"));
      return pass < 5;
    });
    // Pass 1 scanned the blank target and read back what it wrote.
    expect(readAt[1]).toBeGreaterThanOrEqual(8 * MiB);
    // Passes 2 and 3 trusted what pass 1 found: no read of the local disk at all.
    expect(readAt[3]).toBe(readAt[1]);
    // Pass 4: the batch that changed on the agent (1 MiB batches; the write spans at most two) is
    // read for its leaf digests, and the leaves written are read back; nothing else.
    expect(writtenAt[4]! - writtenAt[3]!).toBe(2 * 64 * 1024);
    expect(readAt[4]! - readAt[3]!).toBeGreaterThan(0);
    expect(readAt[4]! - readAt[3]!).toBeLessThanOrEqual(2 * MiB + 2 * 64 * 1024);
    expect(readAt[5]).toBe(readAt[4]);
    // The final pass (after the launch; a trusted pass may still start before it) reads the whole
    // local disk again.
    expect(target.readBytes - readAt[5]!).toBeGreaterThanOrEqual(8 * MiB);
    expect(target.bytes.equals(source.bytes)).toBe(true);
  });

  it("known batches are not held to the window of batches read: a quiet pass streams its GROUPs", async () => {
    const source = new MemoryDisk(random(48 * MiB, "stream"));
    const target = new MemoryDisk(Buffer.from(source.bytes));
    let pass = 1;
    let outstanding = 0;
    const most: number[] = [];
    const tap = (frame: Buffer, from: "client" | "agent") => {
      const f = decode(frame);
      if (from === "client" && f.type === Type.Group && !(f.flags & GROUP_VERIFY)) outstanding += 1;
      if (from === "agent" && f.type === Type.BatchDone) outstanding -= 1;
      most[pass] = Math.max(most[pass] ?? 0, outstanding);
      return frame;
    };
    await continuous(source, target, (done) => {
      pass = done + 1;
      return done < 2;
    }, { link: { tap }, window: 4 });
    // Pass 1 reads every batch: at most 4 in flight (and the one being submitted). Pass 2 knows
    // all 48 and sends them without waiting for answers.
    expect(most[1]).toBeLessThanOrEqual(5);
    expect(most[2]).toBeGreaterThan(16);
    expect(target.bytes.equals(source.bytes)).toBe(true);
  });

  it("a known batch written and then cut off mid-pass is not trusted again when the pass reruns", async () => {
    // The agent's batch changes after pass 1; pass 2 writes it, and the link drops right after that
    // write; meanwhile the agent's batch changes back. The rerun must not send the digest pass 1
    // knew (which now matches the agent again) for a local batch that no longer holds it.
    const source = new MemoryDisk(random(8 * MiB, "aba"));
    const target = new MemoryDisk(Buffer.from(source.bytes));
    const old = Buffer.from(source.bytes.subarray(5 * MiB, 5 * MiB + 2 * 64 * 1024));
    const links: { terminate(): void }[] = [];
    let armed = false;
    target.damage = (offset) => {
      if (!armed || offset !== 5 * MiB) return;
      armed = false;
      old.copy(source.bytes, 5 * MiB);
      links.at(-1)!.terminate();
    };
    const sameAfter: boolean[] = [];
    await continuous(source, target, (pass) => {
      sameAfter[pass] = target.bytes.equals(source.bytes);
      if (pass === 1) {
        random(2 * 64 * 1024, "new").copy(source.bytes, 5 * MiB);
        armed = true;
      }
      return pass < 2;
    }, { attempts: 3, onPair: (pair) => links.push(pair.client) });
    expect(links.length).toBeGreaterThanOrEqual(2);
    // Right after the rerun of pass 2, before the final pass that trusts nothing.
    expect(sameAfter[2]).toBe(true);
    expect(target.bytes.equals(source.bytes)).toBe(true);
  });

  it("a known all-zero batch that the agent then writes arrives, read back whole", async () => {
    // The client's GROUP for a known zero batch is the all-zero digest, which the agent answers with
    // its data at once (no NEED_LEAVES): the client never hashed that batch's leaves in this pass.
    const source = new CountedDisk(Buffer.concat([random(4 * MiB, "low half"), Buffer.alloc(4 * MiB)]));
    const target = new MemoryDisk(Buffer.alloc(8 * MiB));
    const readAt: number[] = [];
    await continuous(source, target, async (pass) => {
      readAt[pass] = target.readBytes;
      if (pass === 2) source.change(6 * MiB + 100, random(1000, "into the zeros"));
      return pass < 4;
    });
    expect(readAt[3]! - readAt[2]!).toBe(MiB);
    expect(readAt[4]).toBe(readAt[3]);
    expect(target.bytes.equals(source.bytes)).toBe(true);
  });

  it("a source that cannot tell is read in full on every pass", async () => {
    const source = new CountedDisk(random(4 * MiB, "src2"));
    source.stamped = false;
    const target = new MemoryDisk(Buffer.alloc(4 * MiB));
    const readAt: number[] = [];
    await continuous(source, target, async (pass) => {
      readAt[pass] = source.readBytes;
      return pass < 3;
    });
    expect(readAt[3]! - readAt[2]!).toBeGreaterThanOrEqual(4 * MiB);
    expect(target.bytes.equals(source.bytes)).toBe(true);
  });

  it("a volume whose pass starts slowly does not let another volume's batches take its read budget", async () => {
    // Answers leave in the order the GROUPs came; if a later volume's batches took the whole read
    // budget while the first volume waited for its pass to start, its first answer could never be
    // read: the session would hang.
    class SlowStamp extends CountedDisk {
      override async changeStamp(): Promise<string | undefined> {
        await new Promise((resolve) => setTimeout(resolve, 100));
        return super.changeStamp();
      }
    }
    const slow = new SlowStamp(random(4 * MiB, "slow"));
    const quick = new CountedDisk(random(4 * MiB, "quick"));
    const targets = [new MemoryDisk(Buffer.alloc(4 * MiB)), new MemoryDisk(Buffer.alloc(4 * MiB))];
    // A budget below one buffer: one batch read at a time, the tightest case.
    const run = replicateMemory([slow, quick], targets, { readBudget: 2 * MiB, attempts: 1 });
    const hung = new Promise((_, reject) => setTimeout(() => reject(new Error("the session hung")), 20_000).unref());
    await Promise.race([run, hung]);
    expect(targets[0]!.bytes.equals(slow.bytes)).toBe(true);
    expect(targets[1]!.bytes.equals(quick.bytes)).toBe(true);
  });

  it("data written into the tail beyond a smaller local disk after the first pass fails the replication (TAIL_NOT_ZERO)", async () => {
    // A 5 MiB volume onto a 4 MiB local disk: accepted while the last MiB is zero.
    const source = new CountedDisk(Buffer.concat([random(4 * MiB, "tail"), Buffer.alloc(MiB)]));
    const target = new MemoryDisk(Buffer.alloc(4 * MiB));
    const passes: number[] = [];
    const run = continuous(source, target, (pass) => {
      passes.push(pass);
      if (pass === 1) source.change(4 * MiB + 8192, random(4096, "late"));
      return pass < 4;
    });
    await expect(run).rejects.toMatchObject({ code: "TAIL_NOT_ZERO" });
    expect(passes).toEqual([1]);
  });

  it("a quiet tail is not read again while the source is unchanged", async () => {
    const source = new CountedDisk(Buffer.concat([random(4 * MiB, "tail"), Buffer.alloc(MiB)]));
    const target = new MemoryDisk(Buffer.alloc(4 * MiB));
    const reads: number[] = [];
    await continuous(source, target, (pass) => {
      reads.push(source.readBytes);
      return pass < 3;
    });
    // The session's opening check and the first pass read the tail; quiet passes read nothing.
    expect(reads[2]).toBe(reads[1]);
    expect(target.bytes.equals(source.bytes.subarray(0, 4 * MiB))).toBe(true);
  });

  it("twenty volumes whose every batch changed at once: the agent holds all their batches waiting for leaf digests", async () => {
    // One 64 KiB leaf a batch, so each volume's 80 batches are known after the first pass and up to
    // 64 of them fly at once; the client's disk answers slowly, so they all wait on the agent at
    // once: 20 x 64, above the 1024 the agent once allowed for a whole session.
    const count = 20;
    const sources = Array.from({ length: count }, (_, i) => new CountedDisk(random(5 * MiB, `v${i}`)));
    let slow = false;
    class SlowDisk extends MemoryDisk {
      override async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
        if (slow) await new Promise((resolve) => setTimeout(resolve, 5));
        return super.read(offset, length, into);
      }
    }
    const targets = sources.map(() => new SlowDisk(Buffer.alloc(5 * MiB)));
    await continuous(sources, targets, (pass) => {
      if (pass > 1) return false;
      for (const [i, source] of sources.entries()) source.change(0, random(5 * MiB, `w${i}`));
      slow = true;
      return true;
    }, { batchLeaves: 1 });
    for (const [i, target] of targets.entries()) expect(target.bytes.equals(sources[i]!.bytes)).toBe(true);
  }, 60_000);
});
