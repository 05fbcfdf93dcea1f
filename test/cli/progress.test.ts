import { Writable } from "node:stream";
import { stripVTControlCharacters } from "node:util";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createConsole } from "../../src/cli/console.js";
import { createLog } from "../../src/cli/log.js";
import { createProgress, describeVolume } from "../../src/cli/progress.js";

const MiB = 2 ** 20;
const progress = (volume: string, hashedBytes: number, t = 0, phase = "copy") => ({
  type: "progress", volume, phase, totalBytes: 100 * MiB, hashedBytes, sentBytes: hashedBytes / 2, skippedEqualBytes: hashedBytes / 4, skippedZeroBytes: hashedBytes / 4, bytesPerSecond: 10 * MiB, etaSeconds: (100 * MiB - hashedBytes) / (10 * MiB), t,
});
const verified = (volume: string, mismatchesRepaired = 0) => ({ type: "verified", volume, mismatchesRepaired });
const passComplete = (pass: number) => ({ type: "pass-complete", pass, phase: pass === 1 ? "copy" : "continuous" });

function setup(json: boolean, isTTY: boolean, columns = 200) {
  const out: string[] = [];
  const human: string[] = [];
  const sink = (into: string[]) =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        into.push(chunk.toString());
        done();
      },
    });
  const stdout = Object.assign(sink(json ? out : human), { isTTY, columns });
  const stderr = Object.assign(sink(human), { isTTY: false });
  const log = createLog({ console: false, consoleWrite: () => undefined });
  let now = 0;
  const view = createProgress(createConsole({ json, stdout, stderr, redact: (s) => s }), log, ["/dev/xvda", "/dev/xvdb"], () => now);
  // The view's clock, and with fake timers the timers too.
  const tick = (ms: number) => {
    now += ms;
    if (vi.isFakeTimers()) vi.advanceTimersByTime(ms);
  };
  return { view, out, human, tick };
}

const lines = (chunks: string[]) => stripVTControlCharacters(chunks.join("")).split("\n").map((l) => l.replace(/^\r/, "")).filter(Boolean);

afterEach(() => vi.useRealTimers());

describe("progress", () => {
  it("describes a volume with scanned, sent, skipped, rate and ETA", () => {
    expect(describeVolume(progress("/dev/xvda", 50 * MiB))).toBe(
      "copy scanned 50.00 MiB/100.0 MiB  50.0%  sent 25.00 MiB  equal 12.50 MiB  zero 12.50 MiB  10.00 MiB/s  ETA 00:05",
    );
  });

  it("in continuous replication, adds the lag and the backlog, even a backlog of zero", () => {
    const continuous = { ...progress("/dev/xvda", 50 * MiB), phase: "continuous", lagSeconds: 12 };
    expect(describeVolume({ ...continuous, backlogBytes: 3 * MiB })).toMatch(/ETA 00:05 {2}lag 00:12 {2}backlog 3\.00 MiB$/);
    expect(describeVolume({ ...continuous, backlogBytes: 0 })).toMatch(/lag 00:12 {2}backlog 0 B$/);
    expect(describeVolume(continuous)).toMatch(/lag 00:12$/);
  });

  it("with --json, emits at most one progress event a second per volume, and passes other events on", () => {
    const { view, out, tick } = setup(true, false);
    view.onEvent(progress("/dev/xvda", 10 * MiB));
    view.onEvent(progress("/dev/xvda", 20 * MiB));
    view.onEvent(progress("/dev/xvdb", 20 * MiB));
    tick(1_000);
    view.onEvent(progress("/dev/xvda", 30 * MiB));
    view.onEvent({ type: "verified", volume: "/dev/xvda", mismatchesRepaired: 0 });
    view.stop();
    const events = out.join("").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.map((e) => [e.type, e.volume, e.hashedBytes])).toEqual([
      ["progress", "/dev/xvda", 10 * MiB],
      ["progress", "/dev/xvdb", 20 * MiB],
      ["progress", "/dev/xvda", 30 * MiB],
      ["verified", "/dev/xvda", undefined],
    ]);
  });

  it("with --json, sends a held-back event when its second is up or at stop, and the end of a pass or a new phase at once", () => {
    vi.useFakeTimers();
    const { view, out, tick } = setup(true, false);
    view.onEvent(progress("/dev/xvda", 10 * MiB));
    tick(300);
    view.onEvent(progress("/dev/xvda", 50 * MiB));
    tick(300);
    view.onEvent(progress("/dev/xvda", 90 * MiB));
    tick(400); // the second is up: 90 MiB goes out, not lost
    tick(200);
    view.onEvent(progress("/dev/xvda", 100 * MiB)); // the end of the pass, 200 ms after the last event
    tick(100);
    view.onEvent(progress("/dev/xvda", 10 * MiB, 0, "continuous")); // a new phase
    tick(100);
    view.onEvent(progress("/dev/xvda", 60 * MiB, 0, "continuous"));
    view.stop(); // the last event of the run goes out too
    tick(5_000);
    const events = out.join("").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.map((e) => [e.phase, e.hashedBytes])).toEqual([
      ["copy", 10 * MiB],
      ["copy", 90 * MiB],
      ["copy", 100 * MiB],
      ["continuous", 10 * MiB],
      ["continuous", 60 * MiB],
    ]);
  });

  it("not on a terminal, prints plain lines every few seconds, never escape codes", () => {
    const { view, human, tick } = setup(false, false);
    tick(10_000);
    view.onEvent(progress("/dev/xvda", 10 * MiB));
    view.onEvent(progress("/dev/xvda", 20 * MiB));
    tick(5_000);
    view.onEvent(progress("/dev/xvda", 30 * MiB));
    view.stop();
    const text = human.join("");
    expect(text).not.toContain("\x1b");
    expect(text.trim().split("\n").map((l) => l.slice(0, 40))).toEqual([
      "/dev/xvda: copy scanned 10.00 MiB/100.0 ",
      "/dev/xvda: copy scanned 30.00 MiB/100.0 ",
    ]);
  });

  it("not on a terminal, prints only the volumes that moved since the last lines, never a finished row again", () => {
    const { view, human, tick } = setup(false, false);
    tick(10_000);
    view.onEvent(progress("/dev/xvda", 10 * MiB));
    view.onEvent(progress("/dev/xvdb", 100 * MiB));
    tick(5_000);
    view.onEvent(progress("/dev/xvda", 60 * MiB, 0, "continuous"));
    tick(5_000);
    view.onEvent(progress("/dev/xvda", 90 * MiB, 0, "continuous"));
    view.onEvent(progress("/dev/xvdb", 10 * MiB, 0, "verify"));
    view.stop();
    view.stop(); // the flow stops the view twice on success
    expect(lines(human).map((l) => l.slice(0, 41))).toEqual([
      "/dev/xvda: copy scanned 10.00 MiB/100.0 M",
      "/dev/xvda: continuous scanned 60.00 MiB/1",
      "/dev/xvdb: copy scanned 100.0 MiB/100.0 M",
      "/dev/xvda: continuous scanned 90.00 MiB/1",
      "/dev/xvdb: verify scanned 10.00 MiB/100.0",
    ]);
  });

  it("tells the person when the bandwidth limit changes in DRS", () => {
    const { view, human } = setup(false, false);
    view.onEvent({ type: "throttle", mbps: 200 });
    view.onEvent({ type: "throttle", mbps: 0 });
    expect(lines(human)).toEqual(["Bandwidth limit now 200 Mbps.", "Bandwidth limit lifted."]);
  });

  it.each([
    ["a run that finishes", true, ["/dev/xvda: verified.", "/dev/xvdb: verified.", "/dev/xvdb: verified, 2 mismatching block(s) repaired.", "/dev/xvda: verified.", "/dev/xvdb: verified."]],
    ["a run cut short in a continuous pass", false, ["/dev/xvda: verified.", "/dev/xvdb: verified.", "/dev/xvdb: verified, 2 mismatching block(s) repaired."]],
  ])("says \"verified\" for the copy pass, a repair and the final pass, not for every continuous pass: %s", (_name, finished, expected) => {
    for (const isTTY of [false, true]) {
      const { view, human } = setup(false, isTTY);
      let pass = 1;
      const runPass = (repaired = 0) => {
        view.onEvent(progress("/dev/xvda", 100 * MiB, 0, pass === 1 ? "copy" : "continuous"));
        view.onEvent(progress("/dev/xvdb", 100 * MiB, 0, pass === 1 ? "copy" : "continuous"));
        view.onEvent(verified("/dev/xvda"));
        view.onEvent(verified("/dev/xvdb", repaired));
        view.onEvent(passComplete(pass));
        pass += 1;
      };
      runPass();
      for (let i = 0; i < 5; i += 1) runPass(i === 2 ? 2 : 0);
      if (!finished) view.onEvent(progress("/dev/xvda", 10 * MiB, 0, "continuous"));
      view.stop();
      view.stop();
      expect(lines(human).filter((l) => l.includes("verified"))).toEqual(expected);
    }
  });

  it("on a terminal, draws a bar per volume and a total", () => {
    const { view, human } = setup(false, true);
    view.onEvent(progress("/dev/xvda", 50 * MiB));
    view.onEvent(progress("/dev/xvdb", 100 * MiB));
    view.stop();
    const text = human.join("");
    expect(text).toContain("/dev/xvda [############------------]");
    expect(text).toContain("/dev/xvdb [########################]");
    expect(text).toMatch(/total {5}\[##################------\] scanned 150\.0 MiB\/200\.0 MiB/);
  });

  it.each([
    ["a finished volume's last rate is left out", [[100, 10], [10, 10]], "10.00 MiB/s  ETA 00:09"],
    ["the slowest volume sets the ETA", [[50, 10], [10, 10]], "20.00 MiB/s  ETA 00:09"],
    ["all finished", [[100, 10], [100, 10]], "0 B/s  ETA 00:00"],
  ])("on a terminal, the total's rate and ETA: %s", (_name, volumes, expected) => {
    const { view, human } = setup(false, true);
    volumes.forEach(([mib, rate], i) =>
      view.onEvent({ ...progress(`/dev/xvd${"ab"[i]}`, mib! * MiB), bytesPerSecond: rate! * MiB, etaSeconds: ((100 - mib!) * MiB) / (rate! * MiB) }),
    );
    view.stop();
    expect(lines(human).find((l) => l.startsWith("total"))).toMatch(new RegExp(`  ${expected}$`));
  });

  it("on a terminal of unknown width (a serial console says 0 columns), draws 80-column lines", () => {
    const { view, human } = setup(false, true, 0);
    view.onEvent(progress("/dev/xvda", 50 * MiB));
    view.stop();
    const lines = stripVTControlCharacters(human.join("")).split("\n").map((l) => l.replace(/^\r/, "")).filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toHaveLength(79);
    expect(lines[0]).toMatch(/^\/dev\/xvda \[############------------\] copy scanned 50\.00 MiB/);
  });
});
