/*
 * The built failback-client as a process, with --no-prompt, against the DRS emulator and a real
 * agent on 127.0.0.1: complete failbacks into image files compared byte for byte, and every
 * failure path with its exit code and its one line.
 */
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DrsClient, StartFailbackLaunchCommand, StopFailbackCommand } from "@aws-sdk/client-drs";
import { baseWorld, FailbackWorld, MiB } from "./world.js";

let fw: FailbackWorld;

beforeAll(async () => {
  fw = await FailbackWorld.start(baseWorld({ throttleMbps: 0 }));
});
afterAll(async () => {
  await fw?.stop();
});

function oneErrorLine(stderr: string): string {
  const lines = stderr.trim().split("\n").filter((l) => l.startsWith("failback-client:"));
  expect(lines).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
  return lines[0]!;
}

describe("failback-client --no-prompt --once into image files", () => {
  it("fails back both volumes, byte-identical, and shows the plan and the result", async () => {
    const [a, b] = await fw.blankImages("once", [8 * MiB, 4 * MiB]);
    const run = await fw.runClient(fw.onceFlags(`/dev/xvda=${a},/dev/xvdb=${b}`));
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("Failback plan for Recovery Instance i-0123456789abcdef0 (db-07):");
    expect(run.stdout).toMatch(/\/dev\/xvda \(8\.00 MiB\) -> .*once-0\.img \(8\.00 MiB\)/);
    expect(run.stdout).toContain("First pass written, verified and flushed");
    expect(await fw.sameAsRecovery(0, a!)).toBe(true);
    expect(await fw.sameAsRecovery(1, b!)).toBe(true);
  });

  it("with --json, prints only JSON events, ending with done", async () => {
    const [a] = await fw.blankImages("json", [8 * MiB]);
    const run = await fw.runClient(fw.onceFlags(`/dev/xvda=${a},/dev/xvdb=EXCLUDE`, ["--json"]));
    expect(run.code).toBe(0);
    const events = run.stdout.trim().split("\n").map((line) => JSON.parse(line) as { type: string; [k: string]: unknown });
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(["connected", "instance", "plan", "done"]));
    expect(events.at(-1)?.type).toBe("done");
    const plan = events.find((e) => e.type === "plan") as unknown as { volumes: { recoveryDevice: string; localDevice: string | null }[] };
    expect(plan.volumes).toEqual([
      expect.objectContaining({ recoveryDevice: "/dev/xvda", localDevice: a }),
      expect.objectContaining({ recoveryDevice: "/dev/xvdb", localDevice: null }),
    ]);
    expect(await fw.sameAsRecovery(0, a!)).toBe(true);
  });

  it("a second run onto the now-identical disks sends almost nothing", async () => {
    const [a, b] = await fw.blankImages("again", [8 * MiB, 4 * MiB]);
    const flags = fw.onceFlags(`/dev/xvda=${a},/dev/xvdb=${b}`, ["--json"]);
    expect((await fw.runClient(flags)).code).toBe(0);
    const second = await fw.runClient(flags);
    expect(second.code).toBe(0);
    const done = JSON.parse(second.stdout.trim().split("\n").at(-1)!) as { type: string; summary: string };
    expect(done.summary).toMatch(/0 B sent/);
  });
});

describe("continuous replication until the failback is launched", () => {
  it("keeps replicating, then finishes when DRS says the failback was launched", async () => {
    const [a, b] = await fw.blankImages("launch", [8 * MiB, 4 * MiB]);
    const flags = fw.onceFlags(`/dev/xvda=${a},/dev/xvdb=${b}`).filter((f) => f !== "--once");
    const drs = new DrsClient({
      region: fw.world.region,
      endpoint: fw.emulator.address,
      credentials: { accessKeyId: fw.world.accessKeyId, secretAccessKey: fw.world.secretAccessKey },
      maxAttempts: 1,
    });
    const running = fw.runClient(flags, { timeoutMs: 90_000 });
    // Launch once the client has been replicating for a moment, as an operator would.
    await new Promise((r) => setTimeout(r, 4_000));
    await drs.send(new StartFailbackLaunchCommand({ recoveryInstanceIDs: [fw.world.recoveryInstanceId] }));
    const run = await running;
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("Failback completed successfully");
    expect(await fw.sameAsRecovery(0, a!)).toBe(true);
    expect(await fw.sameAsRecovery(1, b!)).toBe(true);
  });
});

describe("failback-client --no-prompt failures", () => {
  const cases: [string, () => Promise<string[]>, number, RegExp][] = [
    ["missing region", async () => ["--no-prompt", "--aws-access-key-id", "AKIAIOSFODNN7EXAMPLE", "--aws-secret-access-key", "x".repeat(40)], 2, /no region: pass --region/],
    ["malformed mapping", async () => fw.onceFlags("/dev/xvda=a,,/dev/xvdb=b"), 2, /--device-mapping: .*empty pair/i],
    ["a local disk that does not exist", async () => fw.onceFlags("/dev/xvda=/dev/sdzz,/dev/xvdb=EXCLUDE"), 2, /\/dev\/sdzz/],
    ["a local disk too small", async () => {
      const [a] = await fw.blankImages("small", [2 * MiB]);
      return fw.onceFlags(`/dev/xvda=${a},/dev/xvdb=EXCLUDE`);
    }, 4, /is smaller than the recovery volume \/dev\/xvda/],
    ["a wrong secret key", async () => fw.onceFlags("/dev/xvda=EXCLUDE").map((f) => (f === fw.world.secretAccessKey ? "wrong-secret-0123456789abcdefghijklmnopqrst" : f)), 3, /signature/i],
    ["an unknown access key", async () => fw.onceFlags("/dev/xvda=EXCLUDE").map((f) => (f === fw.world.accessKeyId ? "AKIAI44QH8DHBEXAMPLE" : f)), 3, /access key/i],
    ["an unknown Recovery Instance", async () => fw.onceFlags("/dev/xvda=EXCLUDE").map((f) => (f === fw.world.recoveryInstanceId ? "i-0fffffffffffffff0" : f)), 4, /i-0fffffffffffffff0 was not found/],
    ["an agent that cannot be reached", async () => {
      const [a] = await fw.blankImages("noagent", [8 * MiB]);
      return fw.onceFlags(`/dev/xvda=${a},/dev/xvdb=EXCLUDE`).map((f) => (f === fw.agentAddress ? "127.0.0.1:9" : f));
    }, 5, /agent/i],
    ["one image file given for two volumes under two names", async () => {
      const [a] = await fw.blankImages("twice", [8 * MiB]);
      const dir = a!.slice(0, a!.lastIndexOf("/"));
      return fw.onceFlags(`/dev/xvda=${a},/dev/xvdb=${dir}/./${a!.slice(dir.length + 1)}`);
    }, 2, /--device-mapping: .*twice-0\.img and .*\/\.\/twice-0\.img are the same file: each local disk receives one volume/],
    ["no mapping and no way to map automatically", async () => fw.onceFlags("x").filter((f, i, all) => f !== "--device-mapping" && all[i - 1] !== "--device-mapping").concat(["--system-root", "/nonexistent-root"]), 2, /pass --device-mapping/],
  ];

  it.each(cases)("%s", async (_name, flags, code, message) => {
    const run = await fw.runClient(await flags());
    expect(run.code).toBe(code);
    expect(oneErrorLine(run.stderr)).toMatch(message);
  });
});

describe("secrets", () => {
  it("never appear in output, log, error or the process title", async () => {
    const [a] = await fw.blankImages("secret", [8 * MiB]);
    let cmdline = "";
    // Continuous replication keeps the client running long enough to read its process title;
    // SIGINT then ends it cleanly. An earlier test launched the failback: start a fresh one.
    const drs = new DrsClient({ region: fw.world.region, endpoint: fw.emulator.address, credentials: { accessKeyId: fw.world.accessKeyId, secretAccessKey: fw.world.secretAccessKey } });
    await drs.send(new StopFailbackCommand({ recoveryInstanceID: fw.world.recoveryInstanceId }));
    const flags = fw.onceFlags(`/dev/xvda=${a},/dev/xvdb=EXCLUDE`, ["--log-console"]).filter((f) => f !== "--once");
    const run = await fw.runClient(flags, {
      stopAfterMs: 4_000,
      onStart: (pid) => {
        setTimeout(() => {
          readFile(`/proc/${pid}/cmdline`, "utf8").then((text) => (cmdline = text), () => undefined);
        }, 2_000);
      },
    });
    expect(run.code).toBe(130);
    expect(run.log).toMatch(/credentials accepted/);
    for (const text of [run.stdout, run.stderr, run.log, cmdline]) expect(text).not.toContain(fw.world.secretAccessKey);
    expect(cmdline.replace(/\0/g, "")).toMatch(/^failback-client$/);
  });

  it("a session token is not echoed when STS refuses it", async () => {
    const token = "not-a-valid-token-for-this-key-0123456789";
    const run = await fw.runClient(fw.onceFlags("/dev/xvda=EXCLUDE", ["--log-console", "--aws-session-token", token]));
    expect(run.code).toBe(3);
    for (const text of [run.stdout, run.stderr, run.log]) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(fw.world.secretAccessKey);
    }
  });
});
