/*
 * The engine's cases (test/replication/engine.test.ts) with the real programs: the agent and the
 * failback client as processes on 127.0.0.1, into image files and into loop devices (root). Each
 * case ends with the local disk compared by sha256 and with the bytes the run sent, as its summary
 * gives them, equal to the non-zero data of the leaves that differed before the run.
 *
 * One world serves three volumes, one per case; each run maps one of them and excludes the others.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changeBlocks } from "../../src/cli/demo/volumes.js";
import { random } from "../replication/random-bytes.js";
import { attachLoopMachine, canUseLoops } from "./loops.js";
import { baseWorld, FailbackWorld, jsonEvents, MiB } from "./world.js";

const KiB = 1024;
const GiB = 1024 * MiB;
const LEAF = 64 * KiB;
const DEVICES = ["/dev/xvda", "/dev/xvdb", "/dev/xvdc"] as const;
/** The recovery volumes: 1% changed, grown target, fractional tail. */
const RECOVERY = [32 * MiB, 8 * MiB, GiB];
/**
 * The local disks. The fractional one is not a whole number of GiB and rounds up to the recovery
 * volume's 1 GiB (the size rule's "fractional" case, 9.75 <- 10 GiB scaled down), and ends with a
 * 5 KiB leaf, as a disk need not end on a leaf.
 */
const LOCAL = [32 * MiB, 12 * MiB, 1000 * MiB + 5 * KiB];
/** Where the fractional volume holds data: at its start, in its middle, and in the local disk's short last leaf. */
const FRACTIONAL_DATA = [
  { at: 0, bytes: 2 * MiB },
  { at: 500 * MiB, bytes: MiB },
  { at: 1000 * MiB, bytes: 5 * KiB },
];

async function writeAt(path: string, at: number, data: Buffer): Promise<void> {
  const file = await open(path, "r+");
  try {
    await file.write(data, 0, data.length, at);
    await file.datasync();
  } finally {
    await file.close();
  }
}

async function readAt(path: string, at: number, length: number): Promise<Buffer> {
  const file = await open(path, "r");
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await file.read(buf, 0, length, at);
    return buf.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/** sha256 of [start, end) of a file or a block device, streamed. */
async function sha(path: string, start: number, end: number): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { start, end: end - 1, highWaterMark: MiB })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Bytes of the leaves of [0, length) that differ and are not all zeros on the recovery volume: what must cross as data. */
async function differingData(recovery: string, local: string, length: number): Promise<{ leaves: number; dataBytes: number }> {
  let leaves = 0;
  let dataBytes = 0;
  for (let at = 0; at < length; at += 16 * MiB) {
    const n = Math.min(16 * MiB, length - at);
    const [r, l] = await Promise.all([readAt(recovery, at, n), readAt(local, at, n)]);
    for (let o = 0; o < n; o += LEAF) {
      const theirs = r.subarray(o, o + LEAF);
      if (theirs.equals(l.subarray(o, o + LEAF))) continue;
      leaves += 1;
      if (theirs.some((b) => b !== 0)) dataBytes += theirs.length;
    }
  }
  return { leaves, dataBytes };
}

/** The bytes the `done` summary says were sent ("...; 10.50 MiB sent, ..."), to its 3 significant digits. */
function summarySent(summary: string | undefined): number {
  const match = /; ([\d.]+) (B|KiB|MiB|GiB) sent/.exec(summary ?? "");
  if (!match) throw new Error(`no "sent" figure in the summary: ${summary}`);
  return Number(match[1]) * 1024 ** ["B", "KiB", "MiB", "GiB"].indexOf(match[2]!);
}

/** Within the summary's rounding: 3 significant digits, so 0.5% of the figure. */
const ROUNDING = 0.005;

interface Event {
  type: string;
  code?: string;
  summary?: string;
}
const events = (stdout: string) => jsonEvents<Event>(stdout);

let fw: FailbackWorld;
beforeAll(async () => {
  fw = await FailbackWorld.start(
    baseWorld({
      recoveryInstanceId: "i-0d2e3f4a5b6c7d8e9",
      sourceServerId: "s-0d2e3f4a5b6c7d8e9",
      volumes: DEVICES.map((deviceName, i) => ({ deviceName, bytes: RECOVERY[i]! })),
    }),
  );
  // The demo's 1 GiB volume is three quarters data, beyond the local size too. Rewritten in place
  // (the agent may hold it open): a few MiB of data, and zeros from the local size on.
  const file = await open(fw.recoveryImages[2]!, "r+");
  try {
    await file.truncate(0);
    for (const { at, bytes } of FRACTIONAL_DATA) await file.write(random(bytes, `fractional-${at}`), 0, bytes, at);
    await file.truncate(GiB);
  } finally {
    await file.close();
  }
});
afterAll(() => fw?.stop());

interface Targets {
  paths: string[];
  flags: string[];
  release(): Promise<void>;
}

const kinds: { kind: string; skip: boolean; attach(): Promise<Targets> }[] = [
  {
    kind: "image files",
    skip: false,
    attach: async () => ({ paths: await fw.blankImages("case", LOCAL), flags: [], release: async () => {} }),
  },
  {
    kind: "loop devices",
    skip: !canUseLoops,
    attach: async () => {
      const machine = await attachLoopMachine(LOCAL, "72");
      return { paths: machine.disks.map((d) => d.device), flags: ["--system-root", machine.root, "--allow-loop"], release: () => machine.release() };
    },
  },
];

for (const { kind, skip, attach } of kinds) {
  describe.skipIf(skip)(`processes on 127.0.0.1, into ${kind}`, () => {
    let targets: Targets;
    beforeAll(async () => {
      targets = await attach();
    });
    afterAll(() => targets?.release());

    /** A --once --json run into local disk `index`, the other volumes excluded. */
    const runInto = (index: number) => {
      const mapping = DEVICES.map((d, i) => `${d}=${i === index ? targets.paths[i] : "EXCLUDE"}`).join(",");
      return fw.runClient(fw.onceFlags(mapping, ["--json", ...targets.flags]), { timeoutMs: 90_000 });
    };

    it("1% of blocks changed: identical after, only the changed data sent", async () => {
      const [recovery, local] = [fw.recoveryImages[0]!, targets.paths[0]!];
      await writeAt(local, 0, await readFile(recovery));
      // 1% of the volume's 512 leaves, at scattered places (some may fall where the recovery
      // volume has zeros: those are repaired as zero runs, not sent).
      await changeBlocks(local, "changed-since-failover", 5, RECOVERY[0]!);
      const before = await differingData(recovery, local, RECOVERY[0]!);
      expect(before.leaves).toBeGreaterThan(0);
      expect(before.dataBytes).toBeGreaterThan(0);

      const run = await runInto(0);
      expect(run.stderr).not.toContain("failback-client:");
      expect(run.code).toBe(0);
      expect(await sha(local, 0, RECOVERY[0]!)).toBe(await sha(recovery, 0, RECOVERY[0]!));
      const sent = summarySent(events(run.stdout).at(-1)?.summary);
      expect(sent).toBeGreaterThanOrEqual(before.dataBytes * (1 - ROUNDING));
      expect(sent).toBeLessThanOrEqual(before.dataBytes * (1 + ROUNDING));
    });

    it("grown target: the recovery volume lands at the start, the rest is left alone", async () => {
      const [recovery, local] = [fw.recoveryImages[1]!, targets.paths[1]!];
      await writeAt(local, 0, Buffer.alloc(LOCAL[1]!, 0x5a));
      const before = await differingData(recovery, local, RECOVERY[1]!);

      const run = await runInto(1);
      expect(run.stderr).not.toContain("failback-client:");
      expect(run.code).toBe(0);
      expect(await sha(local, 0, RECOVERY[1]!)).toBe(await sha(recovery, 0, RECOVERY[1]!));
      expect(await sha(local, RECOVERY[1]!, LOCAL[1]!)).toBe(createHash("sha256").update(Buffer.alloc(LOCAL[1]! - RECOVERY[1]!, 0x5a)).digest("hex"));
      // Every leaf differed: the data crosses once, the zero stretches as counts.
      const sent = summarySent(events(run.stdout).at(-1)?.summary);
      expect(before.leaves).toBe(RECOVERY[1]! / LEAF);
      expect(sent).toBeGreaterThanOrEqual(before.dataBytes * (1 - ROUNDING));
      expect(sent).toBeLessThanOrEqual(before.dataBytes * (1 + ROUNDING));
    });

    it("fractional tail, all zeros: accepted, the local disk filled to its last byte", async () => {
      const [recovery, local] = [fw.recoveryImages[2]!, targets.paths[2]!];
      const data = FRACTIONAL_DATA.reduce((a, d) => a + d.bytes, 0);
      expect(await differingData(recovery, local, LOCAL[2]!)).toEqual({ leaves: (2 * MiB + MiB) / LEAF + 1, dataBytes: data });

      const run = await runInto(2);
      expect(run.stderr).not.toContain("failback-client:");
      expect(run.code).toBe(0);
      expect(await sha(local, 0, LOCAL[2]!)).toBe(await sha(recovery, 0, LOCAL[2]!));
      const sent = summarySent(events(run.stdout).at(-1)?.summary);
      expect(sent).toBeGreaterThanOrEqual(data * (1 - ROUNDING));
      expect(sent).toBeLessThanOrEqual(data * (1 + ROUNDING));
    });

    it("fractional tail, not all zeros: refused with TAIL_NOT_ZERO, nothing written", async () => {
      const [recovery, local] = [fw.recoveryImages[2]!, targets.paths[2]!];
      const last = GiB - 1;
      const before = await sha(local, 0, LOCAL[2]!);
      await writeAt(recovery, last, Buffer.from([1]));
      try {
        const run = await runInto(2);
        expect(run.code).toBe(6);
        expect(events(run.stdout).at(-1)).toMatchObject({ type: "error", code: "TAIL_NOT_ZERO" });
        expect(await sha(local, 0, LOCAL[2]!)).toBe(before);
      } finally {
        await writeAt(recovery, last, Buffer.from([0]));
      }
    });
  });
}
