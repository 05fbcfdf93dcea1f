/*
 * The agent's write tracker on real loop devices (root): writes of every kind (direct, buffered and
 * synced, discards) are found region by region, a partition's offsets are its own, and a
 * continuous replication reads again only what was written: measured by the kernel's own count of
 * sectors read from the device.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadOrCreateIdentity, openVolume, replicate, startAgent, type BlockSource, type ReplicationEvent } from "../../src/replication/index.js";
import { trackWrites, type WriteTracker } from "../../src/replication/write-tracker.js";
import { random } from "./random-bytes.js";

const MiB = 2 ** 20;
/** Below 64 MiB: the interactive client test lists the machine's real loop devices, and a disk of
 * 64 MiB or more running beside it would make its 64 MiB instance fit. */
const DISK = 48 * MiB;
const has = (tools: string) => {
  try {
    execFileSync("sh", ["-c", tools.split(" ").map((t) => `command -v ${t}`).join(" && ")], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};
const root = process.getuid?.() === 0 && has("losetup dd blkdiscard");

const INSTANCES = ["/sys/kernel/tracing/instances", "/sys/kernel/debug/tracing/instances"].find((d) => existsSync(d)) ?? "/sys/kernel/tracing/instances";
const sysfsOf = (device: string) => `/sys/class/block/${device.replace("/dev/", "")}`;
/** Sectors the kernel has read from the device (field 3 of its stat file). */
const sectorsRead = (device: string) => Number(readFileSync(`${sysfsOf(device)}/stat`, "utf8").trim().split(/\s+/)[2]);

function dd(device: string, offset: number, length: number, flags: string[]): void {
  execFileSync("dd", ["if=/dev/urandom", `of=${device}`, "bs=64K", `count=${length / (64 * 1024)}`, `seek=${offset / (64 * 1024)}`, "status=none", ...flags]);
}

async function tracked(sysfs: string, size: number): Promise<WriteTracker> {
  const started = await trackWrites(sysfs, size);
  if (!("tracker" in started)) throw new Error(`no tracker: ${started.off}`);
  return started.tracker;
}

describe.skipIf(!root)("the write tracker (root, loop devices)", () => {
  let dir: string;
  const loops: string[] = [];
  const parted: string[] = [];

  const loopOf = async (name: string, bytes: Buffer | number, partitioned = false) => {
    const backing = join(dir, name);
    if (typeof bytes === "number") {
      await writeFile(backing, "");
      await truncate(backing, bytes);
    } else {
      await writeFile(backing, bytes);
    }
    if (partitioned) execFileSync("sfdisk", ["-q", backing], { input: "label: dos\nstart=2048, size=32768\nstart=40960\n" });
    const loop = execFileSync("losetup", ["--find", "--show", backing], { encoding: "utf8" }).trim();
    loops.push(loop);
    // partx adds the partitions itself (--partscan depends on the loop driver's max_part), and
    // removes them again before the device is detached: detaching alone leaves them behind.
    if (partitioned) {
      execFileSync("partx", ["--update", loop]);
      parted.push(loop);
    }
    for (let tries = 0; partitioned && !existsSync(sysfsOf(`${loop}p2`)) && tries < 100; tries += 1) await new Promise((resolve) => setTimeout(resolve, 50));
    return loop;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "write-tracker-"));
  });
  afterAll(async () => {
    for (const loop of parted) {
      try {
        execFileSync("partx", ["--delete", loop], { stdio: "ignore" });
      } catch {
        // Already gone; detaching below is what matters.
      }
    }
    for (const loop of loops) execFileSync("losetup", ["-d", loop]);
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * Continuous replication from an agent on 127.0.0.1 serving `loop` into an image file (or into
   * `extra.target`), calling `onPass` after each pass until it returns false; then the final pass.
   * Returns the agent's log and the target's path.
   */
  const continuousFrom = async (name: string, loop: string, size: number, onPass: (pass: number) => boolean, extra: { open?: () => Promise<BlockSource>; onEvent?: (event: ReplicationEvent) => void; target?: string } = {}) => {
    const { open, onEvent } = extra;
    const [agentId, clientId] = await Promise.all([loadOrCreateIdentity(join(dir, `${name}-agent`), "agent"), loadOrCreateIdentity(join(dir, `${name}-client`), "client")]);
    const logs: string[] = [];
    const agent = await startAgent({ host: "127.0.0.1", port: 0, volumes: [{ deviceName: "/dev/xvda", path: loop, ...(open ? { open } : {}) }], identity: agentId, authorize: (fp) => fp === clientId.fingerprint, log: (line) => logs.push(line) });
    const target = extra.target ?? join(dir, `${name}-local.img`);
    if (!extra.target) {
      await writeFile(target, "");
      await truncate(target, size);
    }
    const finish = new AbortController();
    try {
      await replicate({
        host: "127.0.0.1",
        port: agent.port,
        identity: clientId,
        agentFingerprint: agentId.fingerprint,
        volumes: [{ recoveryDevice: "/dev/xvda", localPath: target, localBytes: size, recoveryBytes: size }],
        mode: "continuous",
        finishSignal: finish.signal,
        intervalMs: 50,
        batchLeaves: 16,
        onEvent: (event) => {
          onEvent?.(event);
          if (event.type === "pass-complete" && !onPass(event.pass)) finish.abort();
        },
      });
    } finally {
      await agent.close();
    }
    return { logs, target };
  };

  it("finds direct writes, buffered writes once synced, and discards, and nothing else", async () => {
    const loop = await loopOf("plain.img", DISK);
    const tracker = await tracked(sysfsOf(loop), DISK);
    try {
      await tracker.settle();
      expect(tracker.written(0, DISK)).toBe(true);
      tracker.reading(0, DISK);
      await tracker.settle();
      expect(tracker.written(0, DISK)).toBe(false);

      dd(loop, 10 * MiB, 192 * 1024, ["oflag=direct"]);
      dd(loop, 35 * MiB + 64 * 1024, 64 * 1024, ["conv=fsync"]);
      execFileSync("blkdiscard", ["--offset", String(40 * MiB), "--length", String(MiB), loop]);
      await tracker.settle();
      const written = Array.from({ length: DISK / MiB }, (_, mib) => (tracker.written(mib * MiB, MiB) ? mib : -1)).filter((mib) => mib >= 0);
      expect(written).toEqual([10, 35, 40]);

      // Read again, they are clean; a write after the settle belongs to the next one.
      tracker.reading(0, DISK);
      dd(loop, 30 * MiB, 64 * 1024, ["oflag=direct"]);
      expect(tracker.written(30 * MiB, MiB)).toBe(false);
      await tracker.settle();
      expect(tracker.written(30 * MiB, MiB)).toBe(true);
      expect(tracker.written(10 * MiB, MiB)).toBe(false);

      // A region read in two halves is clean once both are read; a write to it in between
      // starts it over.
      tracker.reading(30 * MiB, MiB / 2);
      expect(tracker.written(30 * MiB, MiB)).toBe(true);
      tracker.reading(30 * MiB + MiB / 2, MiB / 2);
      expect(tracker.written(30 * MiB, MiB)).toBe(false);
      dd(loop, 20 * MiB, 64 * 1024, ["oflag=direct"]);
      await tracker.settle();
      tracker.reading(20 * MiB, MiB / 2);
      dd(loop, 20 * MiB + 64 * 1024, 64 * 1024, ["oflag=direct"]);
      await tracker.settle();
      tracker.reading(20 * MiB + MiB / 2, MiB / 2);
      expect(tracker.written(20 * MiB, MiB)).toBe(true);
      tracker.reading(20 * MiB, MiB / 2);
      expect(tracker.written(20 * MiB, MiB)).toBe(false);
    } finally {
      await tracker.close();
    }
  });

  it("counts everything as written once its reader is gone, and leaves no trace instance behind", async () => {
    const loop = await loopOf("reader.img", 4 * MiB);
    const mine = () => (existsSync(INSTANCES) ? readdirSync(INSTANCES) : []).filter((name) => name.startsWith(`failback-agent-${process.pid}-`));
    const before = mine();
    const tracker = await tracked(sysfsOf(loop), 4 * MiB);
    const [instance] = mine().filter((name) => !before.includes(name));
    expect(instance).toBeDefined();
    tracker.reading(0, 4 * MiB);
    await tracker.settle();
    expect(tracker.written(0, 4 * MiB)).toBe(false);
    // Kill the reader of the instance's trace_pipe, as a crash or the OOM killer might.
    const pipe = join(INSTANCES, instance!, "trace_pipe");
    const reader = readdirSync("/proc").find((p) => /^\d+$/.test(p) && readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").includes(pipe));
    process.kill(Number(reader));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await tracker.settle();
    expect(tracker.working).toBe(false);
    expect(tracker.written(0, MiB)).toBe(true);
    await tracker.close();
    expect(mine()).toEqual(before);
  });

  it("counts everything as written once it sees an event it cannot read", async () => {
    // A kernel that printed block_rq_complete differently would have its writes missed while the
    // markers still came back. The test writes such a line into the instance's own trace buffer.
    const loop = await loopOf("format.img", 4 * MiB);
    const mine = () => (existsSync(INSTANCES) ? readdirSync(INSTANCES) : []).filter((name) => name.startsWith(`failback-agent-${process.pid}-`));
    const before = mine();
    const tracker = await tracked(sysfsOf(loop), 4 * MiB);
    try {
      const [instance] = mine().filter((name) => !before.includes(name));
      tracker.reading(0, 4 * MiB);
      await tracker.settle();
      expect(tracker.written(0, 4 * MiB)).toBe(false);
      writeFileSync(join(INSTANCES, instance!, "trace_marker"), "block_rq_complete: 7,0 W sector=2048 len=8\n");
      await tracker.settle();
      expect(tracker.working).toBe(false);
      expect(tracker.written(0, MiB)).toBe(true);
    } finally {
      await tracker.close();
    }
  });

  it.skipIf(!has("sfdisk partx"))("gives a partition's writes at its own offsets, and ignores the rest of the disk", async () => {
    const loop = await loopOf("parted.img", DISK, true);
    const part = `${loop}p2`;
    // Partition 2 starts at sector 40960 (20 MiB into the disk) and runs to the end: 28 MiB.
    const tracker = await tracked(sysfsOf(part), DISK - 20 * MiB);
    try {
      tracker.reading(0, DISK - 20 * MiB);
      await tracker.settle();
      dd(part, 3 * MiB, 64 * 1024, ["oflag=direct"]);
      dd(`${loop}p1`, 2 * MiB, 64 * 1024, ["oflag=direct"]);
      await tracker.settle();
      const written = Array.from({ length: (DISK - 20 * MiB) / MiB }, (_, mib) => (tracker.written(mib * MiB, MiB) ? mib : -1)).filter((mib) => mib >= 0);
      expect(written).toEqual([3]);
    } finally {
      await tracker.close();
    }
  });

  it("a write landing just as a pass starts is sent by a later pass, even when the disk is quiet after it", async () => {
    // The pass start reads the change stamp and settles the tracker; a write between the two must
    // be seen by one or the other (it once was seen by neither, for good).
    const size = 8 * MiB;
    const loop = await loopOf("race.img", random(size, "race"));
    let armed = false;
    const open = async () => {
      const volume = await openVolume(loop, "read", "agent");
      const stamp = volume.changeStamp!;
      return {
        ...volume,
        changeStamp: async () => {
          if (armed) {
            armed = false;
            dd(loop, 5 * MiB, 64 * 1024, ["oflag=direct"]);
          }
          return stamp();
        },
      };
    };
    const { target } = await continuousFrom("race", loop, size, (pass) => {
      if (pass === 2) armed = true;
      return pass < 5;
    }, { open });
    expect(execFileSync("cmp", [loop, target]).length).toBe(0);
  });

  it("a disk with its I/O accounting off gives no change stamp, since its counters stand still", async () => {
    const loop = await loopOf("quiet.img", 4 * MiB);
    const iostats = `${sysfsOf(loop)}/queue/iostats`;
    const volume = await openVolume(loop, "read", "agent");
    try {
      expect(await volume.changeStamp?.()).toMatch(/^\d+:/);
      await writeFile(iostats, "0");
      expect(await volume.changeStamp?.()).toBeUndefined();
    } finally {
      await writeFile(iostats, "1");
      await volume.close();
    }
  });

  it("a continuous replication from a device reads again only the regions written, and ends identical", async () => {
    const size = DISK;
    const loop = await loopOf("recovery.img", random(size, "recovery volume"));
    const readAt: number[] = [];
    const { logs, target } = await continuousFrom("recovery", loop, size, (pass) => {
      readAt[pass] = sectorsRead(loop) * 512;
      if (pass === 2) dd(loop, 37 * MiB, MiB, ["oflag=direct"]);
      return pass < 4;
    });
    expect(logs.join("\n")).toContain("read only the regions written");
    // Pass 1 read the whole device; pass 2 nothing (a little slack: udev may probe a new loop
    // device); pass 3, after a 1 MiB write, read that region again (its digests, then its data for
    // the DATA frames), far from the 48 MiB a whole read would take.
    expect(readAt[1]).toBeGreaterThanOrEqual(size);
    expect(readAt[2]! - readAt[1]!).toBeLessThan(2 * MiB);
    expect(readAt[3]! - readAt[2]!).toBeGreaterThanOrEqual(MiB);
    expect(readAt[3]! - readAt[2]!).toBeLessThanOrEqual(8 * MiB);
    expect(execFileSync("cmp", [loop, target]).length).toBe(0);
  });

  it("reports a continuous pass's backlog: the bytes written on the Recovery Instance and not read yet", async () => {
    const size = 16 * MiB;
    const loop = await loopOf("backlog.img", random(size, "backlog"));
    // The progress events of each pass, by pass number.
    const seen = new Map<number, { phase: string; backlog?: number }[]>();
    let pass = 1;
    const { target } = await continuousFrom("backlog", loop, size, (done) => {
      pass = done + 1;
      // Three whole 1 MiB regions, written while no pass runs.
      if (done === 2) dd(loop, 5 * MiB, 3 * MiB, ["oflag=direct"]);
      return done < 3;
    }, {
      onEvent: (event) => {
        if (event.type !== "progress") return;
        seen.set(pass, [...(seen.get(pass) ?? []), { phase: event.phase, backlog: event.backlogBytes }]);
      },
    });
    // The first pass is a copy: no backlog figure. A quiet pass has none to send.
    expect(seen.get(1)!.every((p) => p.phase === "copy" && p.backlog === undefined)).toBe(true);
    expect(seen.get(2)!.map((p) => p.backlog)).toEqual(seen.get(2)!.map(() => 0));
    // After the write, the pass starts 3 MiB behind and ends caught up; so does the final pass.
    const third = seen.get(3)!;
    expect(third[0]).toEqual({ phase: "continuous", backlog: 3 * MiB });
    expect(third.at(-1)).toEqual({ phase: "continuous", backlog: 0 });
    expect(seen.get(4)!.at(-1)).toEqual({ phase: "continuous", backlog: 0 });
    expect(execFileSync("cmp", [loop, target]).length).toBe(0);
  });

  it("the final pass reads the local disk itself: a block that changed under the page cache is found and repaired", async () => {
    // The local disk is a loop device. After pass 2, one of its blocks changes in the backing file,
    // behind the device's page cache, which still holds what the client wrote: a disk that does not
    // hold what was written to it. Continuous passes trust what they found equal; the final pass
    // reads the device directly (O_DIRECT), so it sees the change.
    const size = 8 * MiB;
    const source = await loopOf("direct-source.img", random(size, "direct"));
    const backing = join(dir, "direct-local.img");
    const local = await loopOf("direct-local.img", size);
    // Data sent by each pass (the last progress event of each).
    const sent: number[] = [];
    let pass = 1;
    await continuousFrom("direct", source, size, (done) => {
      pass = done + 1;
      if (done === 2) {
        const fd = openSync(backing, "r+");
        writeSync(fd, Buffer.alloc(4096, 0xee), 0, 4096, 5 * MiB);
        fsyncSync(fd);
        closeSync(fd);
      }
      return done < 3;
    }, { target: local, onEvent: (e) => e.type === "progress" && (sent[pass] = e.sentBytes) });
    expect(execFileSync("cmp", [source, backing]).length).toBe(0);
    // Pass 3 trusted what pass 2 found equal; the final pass (4) sent the leaf the change is in.
    expect(sent.slice(2)).toEqual([0, 0, 64 * 1024]);
  });
});
