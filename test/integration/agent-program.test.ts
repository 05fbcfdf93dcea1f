/*
 * The built failback-agent as a process: a stop by SIGTERM that waits for its sessions to clean
 * up (their volumes, and the write tracker's tracefs instance where the test runs as root on a
 * loop device), and the pairing flags, refused when they cannot pair and working end to end when
 * they can.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmdirSync } from "node:fs";
import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startService } from "../../src/cli/demo/processes.js";
import { writeVolume } from "../../src/cli/demo/volumes.js";
import { loadOrCreateIdentity, replicate, type ReplicationEvent } from "../../src/replication/index.js";
import { canUseLoops } from "./loops.js";
import { baseWorld, dist, FailbackWorld, MiB } from "./world.js";

const CODE = "agent-program-pairing-code-4Tq9Wm2Zr7Xv";
const INSTANCES = ["/sys/kernel/tracing/instances", "/sys/kernel/debug/tracing/instances"].find((d) => existsSync(d));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "agent-program-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve({ code: child.exitCode, signal: child.signalCode })
    : new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));

/** This agent's trace instances (failback-agent-PID-...), left behind or not. */
const traceInstances = (pid: number) => (INSTANCES ? readdirSync(INSTANCES).filter((n) => n.startsWith(`failback-agent-${pid}-`)) : []);

/** Removes what a broken stop left: each instance's `cat` (by its own pid), then the instance. */
function removeLeftovers(pid: number): void {
  for (const name of traceInstances(pid)) {
    const pipe = join(INSTANCES!, name, "trace_pipe");
    for (const proc of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        if (readFileSync(`/proc/${proc}/cmdline`, "utf8").split("\0").includes(pipe)) process.kill(Number(proc));
      } catch {
        // Gone meanwhile.
      }
    }
    for (let tries = 0; tries < 50 && existsSync(join(INSTANCES!, name)); tries += 1) {
      try {
        rmdirSync(join(INSTANCES!, name));
      } catch {
        execFileSync("sleep", ["0.1"]);
      }
    }
  }
}

/**
 * Serves `volume` (a file or a block device) with a pairing code, has a client replicate from it
 * continuously until its first pass is complete (or, with `firstData`, until the first data has
 * arrived), then stops the agent with SIGTERM.
 */
async function stopMidSession(volume: string, bytes: number, onSession?: (agentPid: number) => void, client: { throttleMbps?: number; firstData?: boolean } = {}) {
  const agent = await startService(dist("agent"), ["--listen", "127.0.0.1:0", "--volume", `/dev/xvda=${volume}`, "--pairing-code", CODE, "--state-dir", join(dir, "agent-state")]);
  const pid = agent.child.pid!;
  const target = join(dir, `target-${pid}.img`);
  await writeFile(target, "");
  await truncate(target, bytes);
  const [host, port] = agent.address.split(":") as [string, string];
  const cancel = new AbortController();
  let firstPass!: () => void;
  const passed = new Promise<void>((resolve) => (firstPass = resolve));
  const stopNow = (event: ReplicationEvent) => (client.firstData ? event.type === "progress" && event.sentBytes > 0 : event.type === "pass-complete");
  const run = replicate({
    host,
    port: Number(port),
    identity: await loadOrCreateIdentity(join(dir, "client-identity"), "test client"),
    pairingCode: CODE,
    volumes: [{ recoveryDevice: "/dev/xvda", localPath: target, localBytes: bytes, recoveryBytes: bytes }],
    mode: "continuous",
    signal: cancel.signal,
    reconnect: { attempts: 1, baseDelayMs: 100 },
    throttleMbps: client.throttleMbps,
    onEvent: (event: ReplicationEvent) => stopNow(event) && firstPass(),
  }).catch(() => undefined);
  try {
    await passed;
    onSession?.(pid);
    agent.child.kill("SIGTERM");
    const exit = await exited(agent.child);
    return { exit, output: agent.output(), pid };
  } finally {
    cancel.abort();
    await run;
    await agent.stop();
  }
}

describe("failback-agent stopped by SIGTERM", () => {
  it("ends its open session, waits for it to clean up, says so, and exits 0", async () => {
    const image = join(dir, "recovery.img");
    await writeVolume(image, "sigterm", 4);
    const { exit, output } = await stopMidSession(image, 4 * MiB);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(output).toMatch(/SIGTERM: stopping: no new connections; ending the sessions\n/);
    expect(output).toMatch(/ disconnected; \d+ bytes of data sent\n.*stopped: 1 session\(s\) ended and cleaned up\n/);
  });

  it("ends a session whose answers wait on the bandwidth limit without waiting for them", async () => {
    // At 4 Mbps what the agent has queued for a blank client (its 32 MiB read budget) takes over
    // 30 s to send; the stop waits 10 s at most.
    const image = join(dir, "throttled.img");
    await writeVolume(image, "throttled", 48);
    const { exit, output } = await stopMidSession(image, 48 * MiB, undefined, { throttleMbps: 4, firstData: true });
    expect(exit).toEqual({ code: 0, signal: null });
    expect(output).toMatch(/stopped: 1 session\(s\) ended and cleaned up\n/);
    // What the log calls sent is what left before the stop: a few frames, not the megabytes queued.
    const sent = Number(/ disconnected; (\d+) bytes of data sent\n/.exec(output)?.[1]);
    expect(sent).toBeLessThan(4 * MiB);
  });

  it("exits 0 at once with no session open", async () => {
    const image = join(dir, "idle.img");
    await writeVolume(image, "idle", 1);
    const agent = await startService(dist("agent"), ["--listen", "127.0.0.1:0", "--volume", `/dev/xvda=${image}`, "--pairing-code", CODE, "--state-dir", join(dir, "agent-state")]);
    agent.child.kill("SIGTERM");
    expect(await exited(agent.child)).toEqual({ code: 0, signal: null });
    expect(agent.output()).toMatch(/stopped: 0 session\(s\) ended and cleaned up/);
  });

  it.skipIf(!canUseLoops || !INSTANCES)("leaves no trace instance behind (root, a loop device)", async () => {
    const backing = join(dir, "loop-backing.img");
    await writeVolume(backing, "traced", 8);
    const loop = execFileSync("losetup", ["--find", "--show", backing], { encoding: "utf8" }).trim();
    let pid = 0;
    let during: string[] = [];
    try {
      const result = await stopMidSession(loop, 8 * MiB, (agentPid) => {
        pid = agentPid;
        during = traceInstances(agentPid);
      });
      // The session did follow the loop device's writes: there was an instance to clean up.
      expect(during).toHaveLength(1);
      expect(result.exit).toEqual({ code: 0, signal: null });
      expect(result.output).toMatch(/stopped: 1 session\(s\) ended and cleaned up/);
      expect(traceInstances(pid)).toEqual([]);
    } finally {
      if (pid) removeLeftovers(pid);
      execFileSync("losetup", ["-d", loop]);
    }
  });
});

/** Runs the agent with `flags` until it exits (bounded); it should refuse them at once. */
async function refusedAgent(flags: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [dist("agent"), "--listen", "127.0.0.1:0", "--volume", `/dev/xvda=${join(dir, "none.img")}`, "--state-dir", join(dir, "refused-state"), ...flags], {
    env: { PATH: process.env.PATH, AWS_EC2_METADATA_DISABLED: "true" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const { code } = await exited(child);
  clearTimeout(timer);
  return { code, stderr };
}

describe("failback-agent pairing flags", () => {
  const fingerprint = "ab".repeat(32);

  it.each([
    ["--client-fingerprint without DRS, which no client could pair with", ["--client-fingerprint", fingerprint], /^failback-agent: --client-fingerprint needs --recovery-instance-id and --region too: .*start both ends with --pairing-code$/],
    ["a malformed --client-fingerprint, named", ["--client-fingerprint", "abc123", "--recovery-instance-id", "i-0123456789abcdef0", "--region", "us-east-1"], /^failback-agent: --client-fingerprint "abc123" is not a sha256 certificate fingerprint: 64 hex digits/],
    ["--client-fingerprint beside --pairing-code", ["--client-fingerprint", fingerprint, "--pairing-code", CODE], /^failback-agent: --client-fingerprint and --pairing-code are two ways of pairing: give one$/],
    ["no way of pairing at all", [], /^failback-agent: pairing needs --recovery-instance-id and --region \(or --pairing-code on both ends\)$/],
  ])("refuses %s: one line, exit 2", async (_name, flags, message) => {
    const run = await refusedAgent(flags);
    expect(run.code).toBe(2);
    const lines = run.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });
});

describe("failback-agent --client-fingerprint with DRS", () => {
  let fw: FailbackWorld;
  let pinnedState: string;
  let agentLog: () => string;

  beforeAll(async () => {
    // The client's key pair exists before the agent starts: its fingerprint is given by hand,
    // as `openssl x509 -fingerprint -sha256` prints it.
    pinnedState = await mkdtemp(join(tmpdir(), "pinned-client-"));
    const { fingerprint } = await loadOrCreateIdentity(join(pinnedState, "identity"), "pinned client");
    const openssl = fingerprint.toUpperCase().match(/../g)!.join(":");
    fw = await FailbackWorld.start(baseWorld({ recoveryInstanceId: "i-0ccccdddd00003333", sourceServerId: "s-0ccccdddd00003333" }), { agentFlags: ["--client-fingerprint", openssl] });
    agentLog = () => fw.agent.output();
  });
  afterAll(async () => {
    await fw?.stop();
    await rm(pinnedState, { recursive: true, force: true });
  });

  const withStateDir = (flags: string[], stateDir: string) => flags.map((f, i) => (flags[i - 1] === "--state-dir" ? stateDir : f));

  it("publishes the agent's fingerprint, so the pinned client pairs and fails back", async () => {
    const [a, b] = await fw.blankImages("pinned", [8 * MiB, 4 * MiB]);
    const run = await fw.runClient(withStateDir(fw.onceFlags(`/dev/xvda=${a},/dev/xvdb=${b}`), pinnedState), { timeoutMs: 60_000 });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(await fw.sameAsRecovery(0, a!)).toBe(true);
    expect(await fw.sameAsRecovery(1, b!)).toBe(true);
    expect(agentLog()).toMatch(/published the agent fingerprint on i-0ccccdddd00003333/);
  });

  it("refuses another client even though its fingerprint is the one in the client tag", async () => {
    const [a] = await fw.blankImages("other", [8 * MiB]);
    const run = await fw.runClient(withStateDir(fw.onceFlags(`/dev/xvda=${a},/dev/xvdb=EXCLUDE`), join(fw.dir, "other-client-state")), { timeoutMs: 60_000 });
    expect(run.code).toBe(5);
    expect(run.stderr).toMatch(/^failback-client: the agent at 127\.0\.0\.1:\d+ refused this client \(HTTP 403\)/m);
    expect(agentLog()).toMatch(/refused 127\.0\.0\.1:\d+: client certificate [0-9a-f]{16}… is not the paired client/);
  });
});
