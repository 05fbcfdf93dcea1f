/*
 * While the built failback-client replicates continuously, DRS (the emulator, in this process so a
 * credential can expire or lose a permission in the middle of a run) stops answering as it should:
 * the client must say so on stderr and, when it cannot go on, end with the exit code of the cause,
 * instead of replicating for ever towards a launch it can no longer see.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { StoredCredential } from "../../src/emulator/sigv4.js";
import { baseWorld, FailbackWorld, jsonEvents, MiB, type Run } from "./world.js";

let fw: FailbackWorld;
beforeAll(async () => {
  fw = await FailbackWorld.start(baseWorld({ recoveryInstanceId: "i-0bbbbcccc00002222", sourceServerId: "s-0bbbbcccc00002222" }), { inProcess: true });
});
afterAll(() => fw?.stop());

const drs = () => fw.drs!;
const instance = () => drs().state.recoveryInstances.find((r) => r.recoveryInstanceID === fw.world.recoveryInstanceId)!;

beforeEach(() => {
  instance().failback = { state: "FAILBACK_NOT_STARTED" };
});

let keys = 0;
/** A credential of the client's own (the agent keeps the world's), with a session token. */
function clientCredential(): StoredCredential & { sessionToken: string } {
  keys += 1;
  const credential = {
    accessKeyId: `ASIAWATCHTEST0000${keys}`,
    secretAccessKey: `watch-secret-${keys}-Lq3Zr8Vn2Xc5Bm9Kd4Hw7Ty1`,
    sessionToken: `watch-session-token-${keys}-FwoGZXIvYXdzEJr7wEaDPq2x`,
    account: fw.world.account,
  };
  drs().state.credentials.push(credential);
  return credential;
}

async function continuousFlags(credential: StoredCredential & { sessionToken: string }, prefix: string): Promise<string[]> {
  const [a, b] = await fw.blankImages(prefix, [8 * MiB, 4 * MiB]);
  return fw
    .onceFlags(`/dev/xvda=${a},/dev/xvdb=${b}`, ["--json", "--aws-session-token", credential.sessionToken])
    .filter((f) => f !== "--once")
    .map((f) => (f === fw.world.accessKeyId ? credential.accessKeyId : f === fw.world.secretAccessKey ? credential.secretAccessKey : f));
}

function errorLine(run: Run): string {
  const lines = run.stderr.trim().split("\n").filter((l) => l.startsWith("failback-client:"));
  expect(lines).toHaveLength(1);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

const once = (run: () => void) => {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    run();
  };
};

describe("the client watching DRS for the failback launch", () => {
  it("a session token that expires mid-run ends the run with exit 3, naming --aws-session-token", async () => {
    const credential = clientCredential();
    const expire = once(() => (credential.expiresAt = new Date(0).toISOString()));
    const run = await fw.runClient(await continuousFlags(credential, "expired"), {
      // Only once the first pass is written: the watch is running, the pairing long done.
      onStdout: (text) => text.includes('"type":"pass-complete"') && expire(),
      timeoutMs: 30_000,
    });
    expect(run.code).toBe(3);
    expect(errorLine(run)).toMatch(/^failback-client: replication stopped before the failback launch: the session token has expired .*renew --aws-session-token .*then run the client again/);
    const last = JSON.parse(run.stdout.trim().split("\n").at(-1)!) as { type: string; code: string; exitCode: number };
    expect(last).toMatchObject({ type: "error", code: "EXPIRED_TOKEN", exitCode: 3 });
    for (const text of [run.stdout, run.stderr, run.log]) {
      expect(text).not.toContain(credential.sessionToken);
      expect(text).not.toContain(credential.secretAccessKey);
    }
  });

  it("shows a failing poll on stderr once, not at every poll, and still finishes once DRS answers", async () => {
    const credential = clientCredential();
    // Two polls in a row (three SDK attempts each) are throttled, then DRS answers again.
    const throttle = once(() => drs().throttleNext(6));
    let warned = false;
    const launch = once(() => {
      // Launched after the failure has cleared, as an operator would.
      setTimeout(() => (instance().failback = { state: "FAILBACK_LAUNCH_STATE_NOT_AVAILABLE" }), 4_000);
    });
    const running = fw.runClient(await continuousFlags(credential, "throttled"), {
      onStdout: (text) => {
        if (text.includes('"type":"pass-complete"')) throttle();
        if (text.includes('"type":"warning"')) {
          warned = true;
          launch();
        }
      },
      timeoutMs: 60_000,
    });
    const run = await running;
    expect(warned).toBe(true);
    expect(run.code).toBe(0);
    const warnings = run.stderr.split("\n").filter((l) => l.startsWith("Warning:"));
    expect(warnings).toEqual([expect.stringMatching(/^Warning: cannot read the failback state of i-0bbbbcccc00002222; replication goes on meanwhile, and stops if this lasts 5 min: AWS kept throttling drs:DescribeRecoveryInstances/)]);
    expect(run.stdout).toContain('"type":"done"');
  });

  it("an agent that cannot check the pairing with DRS (HTTP 503) is named as such, exit 5", async () => {
    const credential = clientCredential();
    const agentKey = drs().state.credentials[0]!;
    // The agent's own credential loses the permission it reads the client's tag with.
    agentKey.allowedActions = ["sts:GetCallerIdentity", "drs:DescribeRecoveryInstances", "drs:TagResource"];
    try {
      const flags = (await continuousFlags(credential, "agent503")).concat("--once");
      const run = await fw.runClient(flags, { timeoutMs: 60_000 });
      expect(run.code).toBe(5);
      expect(errorLine(run)).toMatch(/the agent at 127\.0\.0\.1:\d+ could not check the pairing with DRS \(HTTP 503\): its AWS credentials were refused or it cannot reach DRS/);
    } finally {
      delete agentKey.allowedActions;
    }
    expect(fw.agent.output()).toMatch(/refused 127\.0\.0\.1:\d+: cannot check the pairing: access denied for drs:ListTagsForResource/);
  });

  it("a bandwidth limit changed in DRS during continuous replication reaches the agent", async () => {
    const credential = clientCredential();
    const id = fw.world.recoveryInstanceId;
    const configs = drs().state.failbackReplicationConfigurations;
    configs[id] = { ...configs[id], recoveryInstanceID: id, bandwidthThrottling: 100 };
    // Lifted in the console once the first pass is done; launched once the client has passed it on.
    const lift = once(() => (configs[id] = { ...configs[id], bandwidthThrottling: 0 }));
    const launch = once(() => (instance().failback = { state: "FAILBACK_LAUNCH_STATE_NOT_AVAILABLE" }));
    try {
      const run = await fw.runClient(await continuousFlags(credential, "retune"), {
        onStdout: (text) => {
          if (text.includes('"type":"pass-complete"')) lift();
          if (text.includes('"type":"throttle"')) launch();
        },
        timeoutMs: 60_000,
      });
      expect(run.code).toBe(0);
      const events = jsonEvents<{ type: string; mbps?: number; throttleMbps?: number }>(run.stdout);
      expect(events.find((e) => e.type === "plan")?.throttleMbps).toBe(100);
      expect(events.filter((e) => e.type === "throttle")).toEqual([expect.objectContaining({ type: "throttle", mbps: 0 })]);
      expect(fw.agent.output()).toMatch(/bandwidth limit now none/);
    } finally {
      delete configs[id];
    }
  });
});
