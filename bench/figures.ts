/**
 * The five figures of issue 6, each measured next to its reference in the same invocation, on the
 * same files, hot cache. Every engine result is checked for correctness (sha256 of the target) before
 * its speed is reported: a fast wrong copy is a failure, not a figure.
 *
 * Work files live in ctx.workDir (outside the repository); the cached source image is never written.
 */
import { createCipheriv } from "node:crypto";
import { closeSync, copyFileSync, existsSync, ftruncateSync, linkSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ensureImage, Prng, randomKey, type CachedImage } from "./generator.js";
import { clientFingerprint, pairingDirs, runClient, startAgent, type ClientReport, type Pairing, type RunningAgent } from "./engine.js";
import { floorHeadline, floorSteps, measureFloor, reach, secondsWithoutPwrite, type FloorArgs, type FloorResult } from "./floor.js";
import { createShapedLink, type ShapedLink } from "./netns.js";
import { run, warm } from "./proc.js";
import { readBoth, socatCopy, startRsyncDaemon } from "./refs.js";
import { bytes, failedFigure, rate, secs, type Figure } from "./report.js";

export interface BenchContext {
  readonly image: CachedImage;
  readonly cacheDir: string;
  readonly workDir: string;
  readonly seed: number;
  /** Runs of figures 1 and 3, each side; the fastest counts (see `fastest`). */
  readonly repeats: number;
  /** Size of the sparse volume of figure 4. */
  readonly sparseSize: number;
  /** Size of each image sent over the shaped link in figure 5. */
  readonly linkImageSize: number;
  readonly linkRateMbit: number;
  /** Registers a cleanup to run on exit or SIGINT (namespaces, agents). */
  readonly onCleanup: (fn: () => Promise<void>) => void;
  readonly log: (line: string) => void;
}

const BLOCK = 64 * 1024;
const DEVICE = "/dev/xvdb";

/**
 * The fastest of `n` runs, each started after a `sync`. Dirty pages left by an earlier step make
 * the kernel throttle the next writer: within one hour the same socat copy took 1.3 s and 5.6 s.
 * The fastest run of each side is the one least disturbed, so the ratio compares like with like.
 */
async function fastest<T extends { seconds: number }>(n: number, once: () => Promise<T>): Promise<T> {
  let best: T | undefined;
  for (let i = 0; i < n; i += 1) {
    await run("sync", [], { timeoutMs: 300_000 });
    const r = await once();
    if (best === undefined || r.seconds < best.seconds) best = r;
  }
  return best!;
}

async function sha256(path: string): Promise<string> {
  const r = await run("sha256sum", [path], { timeoutMs: 300_000 });
  return r.stdout.split(/\s+/)[0] ?? "";
}

function blankFile(path: string, size: number): void {
  const fd = openSync(path, "w");
  try { ftruncateSync(fd, size); } finally { closeSync(fd); }
}

/** Shares the pairing and one client identity across figures. */
let pairingCache: { pairing: Pairing; fingerprint: string } | undefined;
async function pairing(ctx: BenchContext): Promise<{ pairing: Pairing; fingerprint: string }> {
  if (pairingCache === undefined) {
    const p = pairingDirs(ctx.workDir);
    pairingCache = { pairing: p, fingerprint: await clientFingerprint(p) };
  }
  return pairingCache;
}

async function withAgent<T>(ctx: BenchContext, volumes: { deviceName: string; path: string }[], fn: (agent: RunningAgent, p: Pairing) => Promise<T>,
  where: { netns?: string; host?: string } = {}): Promise<T> {
  const { pairing: p, fingerprint } = await pairing(ctx);
  const agent = await startAgent({ pairing: p, clientFingerprint: fingerprint, volumes, ...where });
  ctx.onCleanup(() => agent.stop());
  try {
    return await fn(agent, p);
  } finally {
    await agent.stop();
  }
}

/** One client pass from a fresh agent serving `source` onto `target`, with both processes' CPU time. */
async function enginePass(ctx: BenchContext, source: string, target: string, size: number): Promise<ClientReport & { agentStart: number; agentCpuSeconds: number }> {
  return await withAgent(ctx, [{ deviceName: DEVICE, path: source }], async (agent, p) => {
    const before = agent.cpuSeconds();
    const report = await runClient({ pairing: p, agent, volumes: oneVolume(target, size) });
    return { ...report, agentStart: agent.startSeconds, agentCpuSeconds: agent.cpuSeconds() - before };
  });
}

/** Where the engine's time went: CPU seconds of each process against the two cores' wall time. */
function cpuNote(r: { seconds: number; cpuSeconds: number; agentCpuSeconds: number }): string {
  return `CPU agent ${secs(r.agentCpuSeconds)} + client ${secs(r.cpuSeconds)} in ${secs(r.seconds)} wall`;
}

function oneVolume(localPath: string, size: number, recoveryDevice = DEVICE) {
  return [{ recoveryDevice, localPath, localBytes: size, recoveryBytes: size }];
}

async function expectSame(label: string, target: string, sha: string): Promise<void> {
  const got = await sha256(target);
  if (got !== sha) throw new Error(`${label}: target differs from the source after the pass (sha256 ${got.slice(0, 12)} != ${sha.slice(0, 12)})`);
}

function wire(r: ClientReport): number {
  return r.wireBytesIn + r.wireBytesOut;
}

/** State shared by figures 2 and 3: a changed copy of the image, and a target equal to it. */
interface Changed {
  readonly path: string;
  readonly sha256: string;
  readonly changedBytes: number;
  readonly changedBlocks: number;
}
let changedCache: Changed | undefined;

/** Copies the image and overwrites 1% of its 64 KiB blocks (seeded choice, random contents). */
async function changedImage(ctx: BenchContext): Promise<Changed> {
  if (changedCache !== undefined) return changedCache;
  const path = join(ctx.workDir, "changed.img");
  copyFileSync(ctx.image.path, path);
  const size = ctx.image.spec.size;
  const blocks = Math.floor(size / BLOCK);
  const want = Math.max(1, Math.round(blocks * 0.01));
  const prng = new Prng(ctx.seed ^ 0xc4a9e);
  const chosen = new Set<number>();
  while (chosen.size < want) chosen.add(prng.below(blocks));
  const cipher = createCipheriv("aes-256-ctr", randomKey(ctx.seed ^ 0x1234), Buffer.alloc(16));
  const zero = Buffer.alloc(BLOCK);
  const fd = openSync(path, "r+");
  try {
    for (const b of [...chosen].sort((x, y) => x - y)) {
      const data = cipher.update(zero);
      for (let off = 0; off < BLOCK;) off += writeSync(fd, data, off, BLOCK - off, b * BLOCK + off);
    }
  } finally {
    closeSync(fd);
  }
  changedCache = { path, sha256: await sha256(path), changedBytes: want * BLOCK, changedBlocks: want };
  return changedCache;
}

/** A hard link to the cached image inside the work dir (the rsync module serves only that dir). */
function baseLink(ctx: BenchContext): string {
  const base = join(ctx.workDir, "base.img");
  if (!existsSync(base)) {
    try { linkSync(ctx.image.path, base); } catch { copyFileSync(ctx.image.path, base); }
  }
  return base;
}

/** How figures 1 and 3 count their runs, for the notes. */
function runs(ctx: BenchContext): string {
  return ctx.repeats === 1 ? "one run each" : `fastest of ${ctx.repeats} runs each`;
}

/** A figure's floor as the table, the notes and --json show it. */
interface FloorReading {
  readonly column: string;
  /** The notes' lines; with the engine's seconds, how far the engine is from the floor. */
  notes(engineSeconds?: number): string[];
  readonly data: Record<string, unknown>;
}

/**
 * Figures 1 and 3's floor (bench/floor.ts): warmed as the figure warms its files, fastest of the
 * figure's runs, each after a `sync` like the figure's own. `compare` turns the floor's seconds into
 * the best ratio against the figure's reference and the goal's time. A floor that cannot be
 * measured is reported, and the figure is measured all the same.
 */
async function floorReading(ctx: BenchContext, id: number, args: FloorArgs, paths: string[],
  compare: (f: FloorResult) => { best: number; of: string; goalSeconds: number; goal: string; data: Record<string, unknown> }): Promise<FloorReading> {
  ctx.log(`${id}: floor, the unavoidable work alone in one process (${runs(ctx)})`);
  try {
    await warm(...paths);
    const f = await fastest(ctx.repeats, () => measureFloor(args));
    const c = compare(f);
    const bare = secondsWithoutPwrite(f);
    return {
      column: `${secs(f.seconds)}: at best ${c.best.toFixed(2)}x`,
      notes: (engineSeconds) => [
        `floor: ${floorHeadline(f)} -> at best ${c.best.toFixed(2)}x ${c.of}; the goal (${c.goal}) is ${secs(c.goalSeconds)}: ${reach(f.seconds, c.goalSeconds)}` +
        (bare === undefined ? "" : `; without pwrite (O_DIRECT skips its copy into the page cache) ${secs(bare)}, ${(bare / c.goalSeconds).toFixed(2)}x the goal's time`) +
        (engineSeconds === undefined ? "" : `; the engine took ${(engineSeconds / f.seconds).toFixed(2)}x the floor`),
        `floor's steps (${runs(ctx)}, fastest total): ${floorSteps(f)}`,
      ],
      data: { floor: { ...f, ...c.data, goalSeconds: c.goalSeconds, ...(bare === undefined ? {} : { secondsWithoutPwrite: bare }) } },
    };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return { column: "not measured", notes: () => [`floor not measured: ${message}`], data: { floorError: message } };
  }
}

const T1 = "full pass onto a blank target";
const G1 = ">= 0.8x raw copy speed";

export async function figure1(ctx: BenchContext): Promise<Figure> {
  const size = ctx.image.spec.size;
  const socatTarget = join(ctx.workDir, "socat-target.img");
  await warm(ctx.image.path);
  ctx.log(`1: raw socat copy (${runs(ctx)})`);
  const socat = await fastest(ctx.repeats, async () => {
    const s = await socatCopy(ctx.image.path, socatTarget);
    await expectSame("socat", socatTarget, ctx.image.sha256);
    rmSync(socatTarget, { force: true });
    return s;
  });
  const ref = `socat ${secs(socat.seconds)} (${rate(size / socat.seconds)})`;
  const floor = await floorReading(ctx, 1, { kind: "full", source: ctx.image.path, scratch: join(ctx.workDir, "floor-target.img") }, [ctx.image.path],
    (f) => ({ best: socat.seconds / f.seconds, of: "socat", goalSeconds: socat.seconds / 0.8, goal: "0.8x socat",
      data: { bestSpeedRatio: socat.seconds / f.seconds } }));
  try {
    const target = join(ctx.workDir, "blank-target.img");
    ctx.log(`1: engine full pass (${runs(ctx)})`);
    const r = await fastest(ctx.repeats, async () => {
      blankFile(target, size);
      const pass = await enginePass(ctx, ctx.image.path, target, size);
      await expectSame("figure 1", target, ctx.image.sha256);
      rmSync(target, { force: true });
      return pass;
    });
    const ratio = socat.seconds / r.seconds;
    return {
      id: 1, title: T1, goal: G1, pass: ratio >= 0.8,
      engine: `${secs(r.seconds)} (${rate(size / r.seconds)})`,
      reference: ref,
      ratio: `${ratio.toFixed(2)}x speed`,
      floor: floor.column,
      notes: [
        `${runs(ctx)}; volume ${bytes(size)}; engine wire ${bytes(wire(r))}; socat+fdatasync ${secs(socat.seconds + socat.flushSeconds)} ` +
        `(ratio ${((socat.seconds + socat.flushSeconds) / r.seconds).toFixed(2)}x); engine client wall ${secs(r.wallSeconds)}, agent start ${secs(r.agentStart)}; ${cpuNote(r)}`,
        ...floor.notes(r.seconds),
      ],
      data: { volumeBytes: size, socatSeconds: socat.seconds, socatFlushSeconds: socat.flushSeconds, engineSeconds: r.seconds,
        engineWallSeconds: r.wallSeconds, agentStartSeconds: r.agentStart, engineWireBytes: wire(r), speedRatio: ratio,
        agentCpuSeconds: r.agentCpuSeconds, clientCpuSeconds: r.cpuSeconds, summary: r.summary, ...floor.data },
    };
  } catch (e) {
    const failed = failedFigure(1, T1, G1, e, { socatSeconds: socat.seconds, socatFlushSeconds: socat.flushSeconds, referenceText: ref, ...floor.data });
    return { ...failed, floor: floor.column, notes: floor.notes() };
  }
}

const T2 = "resync, 1% of 64 KiB blocks changed";
const G2 = "faster than rsync; wire <= 1.05x changed + 0.1% vol";

export async function figure2(ctx: BenchContext): Promise<Figure> {
  const size = ctx.image.spec.size;
  const changed = await changedImage(ctx);
  const base = baseLink(ctx);
  const rsyncTarget = join(ctx.workDir, "rsync-target.img");
  rmSync(rsyncTarget, { force: true });
  await warm(base, changed.path);
  const daemon = await startRsyncDaemon(ctx.workDir, join(ctx.workDir, "rsyncd"));
  let full, resync;
  try {
    ctx.log("2: rsync full copy");
    full = await daemon.pull("base.img", rsyncTarget);
    ctx.log("2: rsync resync");
    resync = await daemon.pull("changed.img", rsyncTarget);
  } finally {
    await daemon.stop();
  }
  await expectSame("rsync", rsyncTarget, changed.sha256);
  rmSync(rsyncTarget, { force: true });
  const rsyncWire = resync.sentBytes + resync.receivedBytes;
  const ref = `rsync ${secs(resync.seconds)}, ${bytes(rsyncWire)} wire`;
  const budget = 1.05 * changed.changedBytes + 0.001 * size;
  const refData = { changedBytes: changed.changedBytes, changedBlocks: changed.changedBlocks, wireBudgetBytes: budget,
    rsyncFullSeconds: full.seconds, rsyncFullWireBytes: full.sentBytes + full.receivedBytes,
    rsyncResyncSeconds: resync.seconds, rsyncResyncWireBytes: rsyncWire, rsyncLiteralBytes: resync.literalBytes, referenceText: ref };
  try {
    const target = join(ctx.workDir, "equal-target.img");
    copyFileSync(ctx.image.path, target);
    await warm(target);
    ctx.log("2: engine resync");
    const r = await enginePass(ctx, changed.path, target, size);
    await expectSame("figure 2", target, changed.sha256);
    const timeRatio = resync.seconds / r.seconds;
    const w = wire(r);
    return {
      id: 2, title: T2, goal: G2, pass: timeRatio > 1 && w <= budget,
      engine: `${secs(r.seconds)}, ${bytes(w)} wire`,
      reference: ref,
      ratio: `${timeRatio.toFixed(2)}x faster; wire ${(w / budget).toFixed(2)}x budget`,
      notes: [
        `changed ${changed.changedBlocks} blocks = ${bytes(changed.changedBytes)}; wire budget ${bytes(budget)}; engine in ${bytes(r.wireBytesIn)} / out ${bytes(r.wireBytesOut)}; ` +
        `rsync full copy ${secs(full.seconds)} (${bytes(full.sentBytes + full.receivedBytes)} wire), rsync resync literal ${bytes(resync.literalBytes)}; ${cpuNote(r)}`,
      ],
      data: { ...refData, referenceText: undefined, engineSeconds: r.seconds, engineWallSeconds: r.wallSeconds, engineWireBytes: w,
        engineWireBytesIn: r.wireBytesIn, engineWireBytesOut: r.wireBytesOut, timeRatio,
        agentCpuSeconds: r.agentCpuSeconds, clientCpuSeconds: r.cpuSeconds, summary: r.summary },
    };
  } catch (e) {
    return failedFigure(2, T2, G2, e, refData);
  }
}

const T3 = "identical disks";
const G3 = "wire < 0.1% vol; time close to reading both";

export async function figure3(ctx: BenchContext): Promise<Figure> {
  const size = ctx.image.spec.size;
  // Figure 2 leaves equal-target.img equal to changed.img (checked); otherwise make an equal pair.
  let source: string;
  let sha: string;
  const target = join(ctx.workDir, "equal-target.img");
  if (changedCache !== undefined && existsSync(target) && await sha256(target) === changedCache.sha256) {
    source = changedCache.path;
    sha = changedCache.sha256;
  } else {
    source = ctx.image.path;
    sha = ctx.image.sha256;
    copyFileSync(source, target);
  }
  await warm(source, target);
  ctx.log(`3: reading both sides (${runs(ctx)})`);
  const reads = { parallelSeconds: Infinity, sequentialSeconds: Infinity };
  for (let i = 0; i < ctx.repeats; i += 1) {
    const r = await readBoth(source, target);
    reads.parallelSeconds = Math.min(reads.parallelSeconds, r.parallelSeconds);
    reads.sequentialSeconds = Math.min(reads.sequentialSeconds, r.sequentialSeconds);
  }
  const ref = `read both ${secs(reads.parallelSeconds)} at once, ${secs(reads.sequentialSeconds)} in turn`;
  const floor = await floorReading(ctx, 3, { kind: "equal", source, target }, [source, target],
    (f) => ({ best: f.seconds / reads.sequentialSeconds, of: "in-turn read", goalSeconds: 2 * reads.sequentialSeconds,
      goal: "<= 2x in-turn read", data: { bestRatioToSequentialRead: f.seconds / reads.sequentialSeconds } }));
  const refData = { readBothParallelSeconds: reads.parallelSeconds, readBothSequentialSeconds: reads.sequentialSeconds, referenceText: ref, ...floor.data };
  try {
    ctx.log(`3: engine on identical disks (${runs(ctx)})`);
    const r = await fastest(ctx.repeats, () => enginePass(ctx, source, target, size));
    await expectSame("figure 3", target, sha);
    const w = wire(r);
    const ratioSeq = r.seconds / reads.sequentialSeconds;
    return {
      id: 3, title: T3, goal: G3, pass: w < 0.001 * size && ratioSeq <= 2,
      engine: `${secs(r.seconds)}, ${bytes(w)} wire (${((w / size) * 100).toFixed(4)}%)`,
      reference: ref,
      ratio: `${ratioSeq.toFixed(2)}x in-turn read, ${(r.seconds / reads.parallelSeconds).toFixed(2)}x at-once`,
      floor: floor.column,
      notes: [`${runs(ctx)}; "close to reading both" is read here as <= 2x the time of reading both images one after the other; wire limit ${bytes(0.001 * size)}; ${cpuNote(r)}`,
        ...floor.notes(r.seconds)],
      data: { ...refData, referenceText: undefined, volumeBytes: size, engineSeconds: r.seconds, engineWireBytes: w, wireFraction: w / size,
        ratioToSequentialRead: ratioSeq, ratioToParallelRead: r.seconds / reads.parallelSeconds,
        agentCpuSeconds: r.agentCpuSeconds, clientCpuSeconds: r.cpuSeconds, summary: r.summary },
    };
  } catch (e) {
    return { ...failedFigure(3, T3, G3, e, refData), floor: floor.column, notes: floor.notes() };
  } finally {
    rmSync(target, { force: true });
  }
}

const T4 = "peak memory, sparse volume";
const G4 = "agent and client each < 200 MiB";

export async function figure4(ctx: BenchContext): Promise<Figure> {
  const size = ctx.sparseSize;
  const source = join(ctx.workDir, "sparse-source.img");
  const target = join(ctx.workDir, "sparse-target.img");
  // A mostly-empty volume: 16 GiB of holes with 32 MiB of the mixed image at its start and middle.
  blankFile(source, size);
  blankFile(target, size);
  const piece = Math.min(32 * 2 ** 20, ctx.image.spec.size);
  const buf = Buffer.alloc(piece);
  const inFd = openSync(ctx.image.path, "r");
  const outFd = openSync(source, "r+");
  try {
    readSync(inFd, buf, 0, piece, 0);
    for (const at of [0, Math.floor(size / 2 / BLOCK) * BLOCK]) writeSync(outFd, buf, 0, piece, at);
  } finally {
    closeSync(inFd);
    closeSync(outFd);
  }
  const title = `${T4} (${bytes(size)})`;
  try {
    ctx.log(`4: engine on a ${bytes(size)} sparse volume`);
    const r = await withAgent(ctx, [{ deviceName: DEVICE, path: source }], async (agent, p) => {
      const report = await runClient({ pairing: p, agent, volumes: oneVolume(target, size) });
      return { report, agentPeak: agent.peakRssBytes() };
    });
    const limit = 200 * 2 ** 20;
    const agentPeak = r.agentPeak ?? Number.NaN;
    return {
      id: 4, title, goal: G4, pass: agentPeak < limit && r.report.peakRssBytes < limit,
      engine: `agent ${bytes(agentPeak)}, client ${bytes(r.report.peakRssBytes)}`,
      reference: "limit 200 MiB",
      ratio: `${(Math.max(agentPeak, r.report.peakRssBytes) / limit).toFixed(2)}x limit`,
      notes: [`pass took ${secs(r.report.seconds)} (${rate(size / r.report.seconds)} of volume), wire ${bytes(wire(r.report))}; ` +
        "peaks are VmHWM (agent, read from /proc while it still runs) and getrusage maxRSS (client, at its end)"],
      data: { volumeBytes: size, agentPeakBytes: agentPeak, clientPeakBytes: r.report.peakRssBytes, engineSeconds: r.report.seconds,
        engineWireBytes: wire(r.report), summary: r.report.summary },
    };
  } catch (e) {
    return failedFigure(4, title, G4, e);
  } finally {
    rmSync(source, { force: true });
    rmSync(target, { force: true });
  }
}

const T5 = "shaped 1 Gbit/s link (tc, two netns)";
const G5 = ">= 90% on random; > link rate on compressible";

export async function figure5(ctx: BenchContext): Promise<Figure> {
  const size = ctx.linkImageSize;
  const random = ensureImage(ctx.cacheDir, { seed: ctx.seed, size, profile: "random" }, () => undefined);
  const text = ensureImage(ctx.cacheDir, { seed: ctx.seed, size, profile: "compressible" }, () => undefined);
  await warm(random.path, text.path);
  const title = `${T5}, ${bytes(size)} each`;
  const linkBps = ctx.linkRateMbit * 1e6;
  let link: ShapedLink | undefined;
  let refData: Record<string, unknown> = {};
  try {
    link = await createShapedLink(ctx.linkRateMbit);
    const made = link;
    ctx.onCleanup(() => made.destroy());
    ctx.log("5: socat over the shaped link");
    const socatTarget = join(ctx.workDir, "link-socat.img");
    const rx0 = await link.clientRxBytes();
    const socat = await socatCopy(random.path, socatTarget, { sender: link.agentNs, receiver: link.clientNs, receiverIp: link.clientIp });
    const socatLinkBytes = (await link.clientRxBytes()) - rx0;
    rmSync(socatTarget, { force: true });
    const socatUtil = (size * 8) / socat.seconds / linkBps;
    refData = { linkRateBitsPerSecond: linkBps, imageBytes: size, socatSeconds: socat.seconds, socatUtilisation: socatUtil,
      socatLinkBytes, referenceText: `socat ${(socatUtil * 100).toFixed(1)}% of link` };
    const ref = String(refData.referenceText);
    const onLink = { netns: link.clientNs };
    const runs = await withAgent(ctx, [{ deviceName: "/dev/xvdr", path: random.path }, { deviceName: "/dev/xvdt", path: text.path }],
      async (agent, p) => {
        const out: { report: ClientReport; linkBytes: number }[] = [];
        for (const [device, name] of [["/dev/xvdr", "random"], ["/dev/xvdt", "compressible"]] as const) {
          const target = join(ctx.workDir, `link-${name}.img`);
          blankFile(target, size);
          ctx.log(`5: engine over the shaped link, ${name} data`);
          const before = await made.clientRxBytes();
          const report = await runClient({ pairing: p, agent, volumes: oneVolume(target, size, device), ...onLink });
          const linkBytes = (await made.clientRxBytes()) - before;
          await expectSame(`figure 5 (${name})`, target, name === "random" ? random.sha256 : text.sha256);
          rmSync(target, { force: true });
          out.push({ report, linkBytes });
        }
        return out;
      }, { netns: link.agentNs, host: link.agentIp });
    const [rnd, cmp] = runs;
    if (rnd === undefined || cmp === undefined) throw new Error("figure 5: missing a run");
    // Utilisation: payload the engine moved / what the link could carry in that time. The veth's
    // own counter (all bytes incl. TCP/IP headers) is the cross-check.
    const util = (rnd.report.wireBytesIn * 8) / rnd.report.seconds / linkBps;
    const linkUtil = (rnd.linkBytes * 8) / rnd.report.seconds / linkBps;
    const effective = (size * 8) / cmp.report.seconds;
    return {
      id: 5, title, goal: G5, pass: util >= 0.9 && effective > linkBps,
      engine: `random ${(util * 100).toFixed(1)}% of link; compressible ${(effective / 1e9).toFixed(2)} Gbit/s effective`,
      reference: ref,
      ratio: `${(util / socatUtil).toFixed(2)}x socat util; ${(effective / linkBps).toFixed(2)}x link`,
      notes: [
        `random: ${secs(rnd.report.seconds)}, engine counted ${bytes(rnd.report.wireBytesIn)} in, veth rx ${bytes(rnd.linkBytes)} (link-level utilisation ${(linkUtil * 100).toFixed(1)}%)`,
        `compressible: ${secs(cmp.report.seconds)}, engine counted ${bytes(cmp.report.wireBytesIn)} in, veth rx ${bytes(cmp.linkBytes)}, ` +
        `volume ${bytes(size)} -> ${(size / Math.max(1, cmp.report.wireBytesIn)).toFixed(2)}x smaller on the wire`,
        `socat reference: ${secs(socat.seconds)}, veth rx ${bytes(socatLinkBytes)}`,
      ],
      data: { ...refData, referenceText: undefined, randomSeconds: rnd.report.seconds, randomWireBytesIn: rnd.report.wireBytesIn,
        randomVethRxBytes: rnd.linkBytes, randomUtilisation: util, randomLinkUtilisation: linkUtil,
        compressibleSeconds: cmp.report.seconds, compressibleWireBytesIn: cmp.report.wireBytesIn, compressibleVethRxBytes: cmp.linkBytes,
        compressibleEffectiveBitsPerSecond: effective, summaries: [rnd.report.summary, cmp.report.summary] },
    };
  } catch (e) {
    return failedFigure(5, title, G5, e, refData);
  } finally {
    await link?.destroy();
  }
}
