/*
 * Watching for the failback launch when DRS does not answer (the real SDK client against the
 * emulator on 127.0.0.1): a refused credential ends the watch at once, any other failure is
 * reported once and ends it after a bounded time, and a success in between starts afresh.
 */
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { emulatorState } from "../../src/cli/demo/state.js";
import { createClients, DrsError, readFailbackState, waitForFailbackLaunch } from "../../src/drs/index.js";
import { parseState, startEmulator, type Emulator } from "../../src/emulator/index.js";
import type { StoredCredential } from "../../src/emulator/sigv4.js";

const SECRET = "watch-secret-3Jd8Qw1Zx6Vb9Nm2Lk5Hg7Tr4Yp0Fs";
const ID = "i-0123456789abcdef0";
const world = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: SECRET,
  account: "111122223333",
  region: "us-east-1",
  recoveryInstanceId: ID,
  sourceServerId: "s-0123456789abcdef0",
  hostname: "db-07",
  volumes: [{ deviceName: "/dev/xvda", bytes: 2 ** 20 }],
  macAddress: "02:00:00:00:07:01",
  agentIp: "10.1.2.3",
  throttleMbps: 0,
};

let emulator: Emulator;
let credential: StoredCredential;
const clients = () =>
  createClients({ region: "us-east-1", endpoint: emulator.url, credentials: { accessKeyId: credential.accessKeyId, secretAccessKey: SECRET, sessionToken: credential.sessionToken } });
const record = () => emulator.state.recoveryInstances.find((r) => r.recoveryInstanceID === ID);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  emulator = await startEmulator({ state: parseState(emulatorState(world)) });
});
afterAll(() => emulator?.close());

let keys = 0;
beforeEach(() => {
  keys += 1;
  credential = { accessKeyId: `ASIAWATCHUNIT0000${keys}`, secretAccessKey: SECRET, sessionToken: `token-${keys}-0123456789abcdef`, account: world.account };
  emulator.state.credentials.push(credential);
  emulator.throttleNext(0);
});

describe("waitForFailbackLaunch when DRS fails", () => {
  it("ends at once with the DrsError of a credential refused mid-watch (an expired session token)", async () => {
    const failures: string[] = [];
    const seen: string[] = [];
    const waiting = waitForFailbackLaunch(clients(), ID, { intervalMs: 20, onState: (s) => seen.push(s), onFailure: (e) => failures.push(e.code) }).catch((e: unknown) => e);
    // Mid-watch: after the first state was read (a loaded machine may take a while for it).
    for (let i = 0; i < 250 && seen.length === 0; i += 1) await sleep(20);
    credential.expiresAt = new Date(0).toISOString();
    const error = await waiting;
    expect(error).toBeInstanceOf(DrsError);
    expect(error).toMatchObject({ code: "EXPIRED_TOKEN", category: "credentials" });
    expect(seen).toEqual(["FAILBACK_NOT_STARTED"]);
    expect(failures).toEqual(["EXPIRED_TOKEN"]);
  });

  it("reports another failure once however many polls it lasts, and gives up after giveUpAfterMs with its code", async () => {
    const failures: string[] = [];
    emulator.throttleNext(1_000_000);
    const started = Date.now();
    const error = await waitForFailbackLaunch(clients(), ID, { intervalMs: 20, giveUpAfterMs: 1_500, onFailure: (e) => failures.push(e.code) }).catch((e: unknown) => e);
    emulator.throttleNext(0);
    expect(error).toMatchObject({ code: "THROTTLED", category: "other" });
    expect((error as Error).message).toMatch(/^the failback state of i-0123456789abcdef0 could not be read for \d+ s: AWS kept throttling/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
    expect(failures).toEqual(["THROTTLED"]);
  });

  it("starts afresh after a poll that succeeds: the next failure is reported again and the clock restarts", async () => {
    const failures: string[] = [];
    // The SDK makes three attempts per poll: each throttleNext(3) fails exactly one poll.
    emulator.throttleNext(3);
    // Long enough for a failing poll (three attempts, with the SDK's backoff between them).
    const waiting = waitForFailbackLaunch(clients(), ID, { intervalMs: 50, giveUpAfterMs: 2_500, onFailure: (e) => failures.push(e.code) });
    for (let i = 0; i < 100 && failures.length === 0; i += 1) await sleep(50);
    // Longer than giveUpAfterMs: counted from the first failure, the second would end the watch.
    await sleep(2_700);
    emulator.throttleNext(3);
    for (let i = 0; i < 100 && failures.length === 1; i += 1) await sleep(50);
    record()!.failback = { state: "FAILBACK_LAUNCH_STATE_NOT_AVAILABLE" };
    expect(await waiting).toBe("FAILBACK_LAUNCH_STATE_NOT_AVAILABLE");
    expect(failures).toEqual(["THROTTLED", "THROTTLED"]);
    record()!.failback = { state: "FAILBACK_NOT_STARTED" };
  });

  it("counts a Recovery Instance no longer listed as a failure (not-found), not as a state to wait for", async () => {
    const failures: string[] = [];
    const instances = emulator.state.recoveryInstances;
    emulator.state.recoveryInstances = [];
    try {
      const error = await waitForFailbackLaunch(clients(), ID, { intervalMs: 20, giveUpAfterMs: 300, onFailure: (e) => failures.push(e.code) }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "RECOVERY_INSTANCE_NOT_FOUND", category: "not-found" });
      expect(failures).toEqual(["RECOVERY_INSTANCE_NOT_FOUND"]);
    } finally {
      emulator.state.recoveryInstances = instances;
    }
  });
});

/** An endpoint that takes connections and requests and never answers (a black-holed path, a hung proxy). */
async function silentEndpoint(): Promise<{ url: string; requests: () => number; close: () => void }> {
  const held: Socket[] = [];
  let requests = 0;
  const server: Server = createServer((socket) => {
    held.push(socket);
    socket.on("data", () => (requests += 1));
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    close: () => {
      for (const socket of held) socket.destroy();
      server.close();
    },
  };
}

describe("DRS requests that get no answer", () => {
  const keys = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: SECRET };

  it("fail at the request timeout, so a watch on an endpoint that never answers gives up instead of waiting for ever", async () => {
    const silent = await silentEndpoint();
    try {
      const hung = createClients({ region: "us-east-1", endpoint: silent.url, credentials: keys, timeouts: { connectMs: 1_000, requestMs: 200 } });
      const failures: string[] = [];
      const error = await waitForFailbackLaunch(hung, ID, { intervalMs: 20, giveUpAfterMs: 500, onFailure: (e) => failures.push(e.code) }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "ENDPOINT_UNREACHABLE", category: "unreachable" });
      expect((error as Error).message).toMatch(/could not be read for \d+ s: http:\/\/127\.0\.0\.1:\d+ did not answer drs:DescribeRecoveryInstances in time/);
      expect(failures).toEqual(["ENDPOINT_UNREACHABLE"]);
      expect(silent.requests()).toBeGreaterThanOrEqual(3);
    } finally {
      silent.close();
    }
  });

  it("end at once, all of them, when the clients' signal aborts (Ctrl-C), as CANCELLED", async () => {
    const silent = await silentEndpoint();
    const stop = new AbortController();
    try {
      const hung = createClients({ region: "us-east-1", endpoint: silent.url, credentials: keys, signal: stop.signal, timeouts: { connectMs: 60_000, requestMs: 60_000 } });
      // Two at once: the SDK sets `onabort` on the signal it is given, so a shared one would abort only the last.
      const reads = [readFailbackState(hung, ID).catch((e: unknown) => e), readFailbackState(hung, ID).catch((e: unknown) => e)];
      for (let i = 0; i < 100 && silent.requests() < 2; i += 1) await sleep(20);
      stop.abort();
      for (const error of await Promise.all(reads)) expect(error).toMatchObject({ code: "CANCELLED", category: "cancelled" });
      // A request after the abort does not go out.
      const before = silent.requests();
      await expect(readFailbackState(hung, ID)).rejects.toMatchObject({ code: "CANCELLED" });
      expect(silent.requests()).toBe(before);
    } finally {
      silent.close();
    }
  });
});
