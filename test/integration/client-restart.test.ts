/*
 * The failback client killed with SIGKILL in the middle of its first pass and run again: the
 * local disks end byte-identical to the recovery volumes, and the second run sends only what had
 * not landed. The client keeps no checkpoint, so the second run re-reads and re-hashes every disk;
 * what it must not do is send again a leaf a disk already holds.
 *
 * The kill is armed by the client's own --json progress events and fired by what has landed (not
 * by a timer); what had landed is then measured on the disks themselves, leaf by leaf, and the
 * bound on the second run follows from that figure.
 */
import { statSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256File } from "../../src/cli/demo/volumes.js";
import { random } from "../replication/random-bytes.js";
import { baseWorld, FailbackWorld, jsonEvents, MiB } from "./world.js";

const LEAF = 64 * 1024;
const SIZES = [16 * MiB, 8 * MiB];
/** Kill once the client has received this share of the non-zero data... */
const KILL_AT = 0.4;
/** ...and half a DATA run (16 leaves) more has landed. */
const PAST_EVENT = 8 * LEAF;

let fw: FailbackWorld;
beforeAll(async () => {
  // 32 Mbps: the first pass takes about five seconds, so the progress events (one per batch
  // done) see it half-way whatever the machine's speed; unthrottled, loopback would end first.
  fw = await FailbackWorld.start(
    baseWorld({
      recoveryInstanceId: "i-0c1e2a3b4d5f60789",
      sourceServerId: "s-0c1e2a3b4d5f60789",
      throttleMbps: 32,
      volumes: [
        { deviceName: "/dev/xvda", bytes: SIZES[0]! },
        { deviceName: "/dev/xvdb", bytes: SIZES[1]! },
      ],
    }),
  );
  // Progress comes once a batch is done, so a kill on it alone would fall between batches. The
  // second volume is dense where the first has zero stretches: their batches end at different
  // times, and the kill finds one of them part-way through a batch (leaf-level resume).
  await writeFile(fw.recoveryImages[1]!, random(SIZES[1]!, "client-restart"));
});
afterAll(() => fw?.stop());

interface Event {
  type: string;
  volume?: string;
  sentBytes?: number;
  summary?: string;
  mismatchesRepaired?: number;
}

const events = (stdout: string) => jsonEvents<Event>(stdout);

/** What the latest progress event of each volume says was received, summed. */
function receivedSoFar(stdout: string): number {
  const latest = new Map<string, number>();
  for (const e of events(stdout)) if (e.type === "progress" && e.volume) latest.set(e.volume, e.sentBytes ?? 0);
  return [...latest.values()].reduce((a, b) => a + b, 0);
}

/** The bytes the `done` summary says were sent ("...; 10.50 MiB sent, ..."), to its 3 significant digits. */
function summarySent(summary: string | undefined): number {
  const match = /; ([\d.]+) (B|KiB|MiB|GiB) sent/.exec(summary ?? "");
  if (!match) throw new Error(`no "sent" figure in the summary: ${summary}`);
  return Number(match[1]) * 1024 ** ["B", "KiB", "MiB", "GiB"].indexOf(match[2]!);
}

interface Census {
  /** Bytes in the recovery volume's non-zero leaves. */
  nonZero: number;
  /** Of those, the bytes of leaves the local disk holds exactly. */
  landed: number;
  /** Bytes of leaves that are zero on the recovery volume but not locally: never written by a pass. */
  stray: number;
}

async function census(recovery: string, local: string): Promise<Census> {
  const [r, l] = await Promise.all([readFile(recovery), readFile(local)]);
  const c: Census = { nonZero: 0, landed: 0, stray: 0 };
  for (let at = 0; at < r.length; at += LEAF) {
    const theirs = r.subarray(at, at + LEAF);
    const ours = l.subarray(at, at + LEAF);
    const zero = !theirs.some((b) => b !== 0);
    if (!zero) c.nonZero += theirs.length;
    if (!zero && theirs.equals(ours)) c.landed += theirs.length;
    if (zero && ours.some((b) => b !== 0)) c.stray += theirs.length;
  }
  return c;
}

async function censusAll(locals: string[]): Promise<Census & { perVolume: Census[] }> {
  const perVolume = await Promise.all(locals.map((l, i) => census(fw.recoveryImages[i]!, l)));
  const sum = (f: (c: Census) => number) => perVolume.reduce((a, c) => a + f(c), 0);
  return { nonZero: sum((c) => c.nonZero), landed: sum((c) => c.landed), stray: sum((c) => c.stray), perVolume };
}

describe("client killed mid-pass", () => {
  it("run again, it ends identical and sends only what had not landed", async () => {
    const locals = await fw.blankImages("restart", SIZES);
    const mapping = `/dev/xvda=${locals[0]},/dev/xvdb=${locals[1]}`;
    const { nonZero } = await censusAll(locals);

    // Progress comes once a batch is done, and the agent answers batches one after the other,
    // so a kill on an event alone would fall between two batches. The event arms the kill; it
    // fires once the disks have grown by PAST_EVENT more (blank sparse images: what is allocated
    // is what landed), part-way through the next batch, whose resume is then leaf by leaf. The
    // poll ends with the kill or with the client.
    let pid: number | undefined;
    let receivedWhenArmed = 0;
    let poll: NodeJS.Timeout | undefined;
    const allocated = () => locals.reduce((a, l) => a + statSync(l).blocks * 512, 0);
    const first = await fw
      .runClient(fw.onceFlags(mapping, ["--json"]), {
        timeoutMs: 60_000,
        onStart: (p) => (pid = p),
        onStdout: (text) => {
          if (poll || pid === undefined) return;
          const received = receivedSoFar(text);
          if (received < KILL_AT * nonZero) return;
          const armedAt = allocated();
          poll = setInterval(() => {
            if (allocated() < armedAt + PAST_EVENT) return;
            clearInterval(poll);
            receivedWhenArmed = received;
            process.kill(pid!, "SIGKILL");
          }, 20);
        },
      })
      .finally(() => clearInterval(poll));
    expect(receivedWhenArmed, `the first run ended before the kill: ${first.stdout.slice(-1000)}`).toBeGreaterThan(0);
    expect(first.code).toBeNull();
    expect(events(first.stdout).some((e) => e.type === "done")).toBe(false);

    // What the dead client left on its disks, not what it had received, is what the second run finds.
    const atKill = await censusAll(locals);
    expect(atKill.stray).toBe(0);
    expect(atKill.landed).toBeGreaterThanOrEqual(0.25 * nonZero);
    expect(atKill.landed).toBeLessThan(nonZero);

    const second = await fw.runClient(fw.onceFlags(mapping, ["--json"]), { timeoutMs: 60_000 });
    expect(second.stderr).not.toContain("failback-client:");
    expect(second.code).toBe(0);
    const secondEvents = events(second.stdout);
    const done = secondEvents.at(-1);
    expect(done?.type).toBe("done");
    for (const [i, local] of locals.entries()) expect(await sha256File(local)).toBe(await sha256File(fw.recoveryImages[i]!));
    expect(secondEvents.filter((e) => e.type === "verified").map((e) => e.mismatchesRepaired)).toEqual([0, 0]);

    // The second run compares every leaf by digest and the agent answers only those that differ,
    // so it sends exactly the non-zero leaves that had not landed: `missing`. The slack, a quarter
    // of a leaf, covers the summary's rounding (at most 5 KiB below 100 MiB) and nothing else, so
    // the bound breaks if the second run sends again a single leaf that had landed, let alone the
    // partly landed batch or everything (what had landed is at least a quarter of the data).
    const sent = summarySent(done?.summary);
    const missing = nonZero - atKill.landed;
    const bound = missing + LEAF / 4;
    expect(bound).toBeLessThan(nonZero - MiB);
    expect(sent).toBeGreaterThanOrEqual(missing - LEAF / 4);
    const figures = `non-zero ${nonZero}, received at the arming event ${receivedWhenArmed}, landed per volume ${atKill.perVolume.map((c) => c.landed).join("+")}, second run sent ${sent}`;
    expect(sent, `${figures}, bound ${bound}`).toBeLessThanOrEqual(bound);
  });
});
