/*
 * The real SDK clients of src/drs against the emulator on 127.0.0.1: pages, the fit filter,
 * matching this machine, credential errors, throttling, tags and the failback launch.
 */
import { StartFailbackLaunchCommand } from "@aws-sdk/client-drs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { emulatorState } from "../../src/cli/demo/state.js";
import {
  agentAddress,
  checkCredentials,
  createClients,
  DrsError,
  findOwnInstance,
  fittingInstances,
  getFailbackReplicationConfig,
  listRecoveryInstances,
  publishFingerprint,
  readFingerprint,
  waitForFailbackLaunch,
} from "../../src/drs/index.js";
import { parseState, startEmulator, type Emulator } from "../../src/emulator/index.js";
import { fitsVolume } from "../../src/mapping/index.js";

const MiB = 2 ** 20;
const SECRET = "ctrl-plane-secret-7Hq2Lw9Rt4Yp6Zx1Vb3Nm5Kc8Jd0Fs";
const others = Array.from({ length: 250 }, (_, i) => ({
  recoveryInstanceId: `i-0a${String(i).padStart(15, "0")}`,
  sourceServerId: `s-0a${String(i).padStart(15, "0")}`,
  hostname: `srv-${i}`,
  macAddress: `02:00:00:01:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`,
  volumes: [{ deviceName: "/dev/sda", bytes: (i % 5 === 0 ? 100 : 10) * MiB }],
}));
const world = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: SECRET,
  account: "111122223333",
  region: "us-east-1",
  recoveryInstanceId: "i-0123456789abcdef0",
  sourceServerId: "s-0123456789abcdef0",
  hostname: "db-07",
  volumes: [{ deviceName: "/dev/xvda", bytes: 20 * MiB }],
  macAddress: "02:00:00:00:07:01",
  agentIp: "10.1.2.3",
  throttleMbps: 50,
  others,
};

let emulator: Emulator;
const clients = (overrides: Partial<{ secret: string; key: string; token: string; endpoint: string }> = {}) =>
  createClients({
    region: "us-east-1",
    endpoint: overrides.endpoint ?? emulator.url,
    credentials: { accessKeyId: overrides.key ?? world.accessKeyId, secretAccessKey: overrides.secret ?? SECRET, sessionToken: overrides.token },
    env: { AWS_ENDPOINT_URL_STS: overrides.endpoint ?? emulator.url },
  });

beforeAll(async () => {
  const state = emulatorState(world) as { credentials: Record<string, unknown>[] };
  state.credentials.push(
    { accessKeyId: "AKIAEXPIREDEXAMPLE01", secretAccessKey: SECRET, sessionToken: "tok", account: "111122223333", expiresAt: "2020-01-01T00:00:00Z" },
    { accessKeyId: "AKIALIMITEDEXAMPLE01", secretAccessKey: SECRET, account: "111122223333", allowedActions: ["sts:GetCallerIdentity", "drs:DescribeSourceServers"] },
  );
  emulator = await startEmulator({ state: parseState(state) });
});
afterAll(() => emulator?.close());

async function drsError(promise: Promise<unknown>): Promise<DrsError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DrsError) return error;
    throw error;
  }
  throw new Error("expected a DrsError");
}

describe("src/drs against the emulator", () => {
  it("checks credentials with STS", async () => {
    expect(await checkCredentials(clients())).toMatchObject({ account: "111122223333" });
  });

  it("reads every page of instances, joined with their source servers", async () => {
    const all = await listRecoveryInstances(clients());
    expect(all).toHaveLength(251);
    const mine = all.find((i) => i.id === world.recoveryInstanceId);
    expect(mine).toMatchObject({ hostname: "db-07", disks: [{ deviceName: "/dev/xvda", bytes: 20 * MiB }], privateIp: "10.1.2.3", failbackState: "FAILBACK_NOT_STARTED" });
  });

  it("filters the instances that fit the local disks", async () => {
    const all = await listRecoveryInstances(clients());
    const locals = [{ name: "/dev/sda", bytes: 12 * MiB, byPath: [], byId: [], byUuid: [] }, { name: "/dev/sdb", bytes: 500 * MiB, byPath: [], byId: [], byUuid: [], refusal: "mounted at /" }];
    const fit = fittingInstances(all, locals, fitsVolume);
    expect(fit).toHaveLength(200);
    expect(fit.every((i) => i.disks[0]!.bytes === 10 * MiB)).toBe(true);
  });

  it.each([
    ["MAC", { macs: ["02:00:00:00:07:01"], smbiosUuid: null, hostname: "x", fqdn: "x" }, /MAC/],
    ["hostname", { macs: [], smbiosUuid: null, hostname: "DB-07", fqdn: "x" }, /hostname/],
  ])("finds this server's own instance by %s", async (_, me, reason) => {
    const own = findOwnInstance(await listRecoveryInstances(clients()), me);
    expect(own.chosen?.id).toBe(world.recoveryInstanceId);
    expect(own.reason).toMatch(reason);
  });

  it("finds this server's own instance by SMBIOS UUID, in the kernel's or VMware's spelling", async () => {
    const instances = await listRecoveryInstances(clients());
    const target = { ...instances[0]!, sourceNetworkInterfaces: [], hostname: "other", fqdn: undefined, vmWareUuid: "44454C4C-4200-1035-8052-B4C04F4B4E32" };
    for (const smbiosUuid of ["4c4c4544-0042-3510-8052-b4c04f4b4e32", "44454c4c-4200-1035-8052-b4c04f4b4e32"]) {
      const own = findOwnInstance([target, ...instances.slice(1)], { macs: [], smbiosUuid, hostname: "nomatch", fqdn: "nomatch" });
      expect(own.chosen?.id).toBe(target.id);
      expect(own.reason).toMatch(/SMBIOS UUID/);
    }
  });

  it("leaves an ambiguous match to the person", async () => {
    const own = findOwnInstance(await listRecoveryInstances(clients()), { macs: ["02:00:00:00:07:01", "02:00:00:01:00:01"], smbiosUuid: null, hostname: "x", fqdn: "x" });
    expect(own.chosen).toBeUndefined();
    expect(own.candidates).toHaveLength(2);
  });

  it("reads the failback replication configuration and the agent's address", async () => {
    const c = clients();
    const config = await getFailbackReplicationConfig(c, world.recoveryInstanceId);
    expect(config).toMatchObject({ bandwidthThrottlingMbps: 50, usePrivateIP: true });
    const [mine] = await listRecoveryInstances(c, [world.recoveryInstanceId]);
    expect(agentAddress(mine!, config)).toBe("10.1.2.3:1500");
    expect(() => agentAddress(mine!, { ...config, usePrivateIP: false })).toThrow(/no public IP/);
  });

  it("round-trips pairing fingerprints through tags", async () => {
    const c = clients();
    expect(await readFingerprint(c, world.recoveryInstanceId, "agent")).toBeUndefined();
    await publishFingerprint(c, world.recoveryInstanceId, "agent", "a".repeat(64));
    await publishFingerprint(c, world.recoveryInstanceId, "client", "b".repeat(64));
    expect(await readFingerprint(c, world.recoveryInstanceId, "agent")).toBe("a".repeat(64));
    expect(await readFingerprint(c, world.recoveryInstanceId, "client")).toBe("b".repeat(64));
    await expect(publishFingerprint(c, world.recoveryInstanceId, "agent", "secret")).rejects.toThrow(/64 lowercase hex/);
  });

  it.each([
    ["a wrong secret", { secret: "wrong-secret-wrong-secret-wrong-secret-00" }, "BAD_SIGNATURE", "credentials"],
    ["an unknown key", { key: "AKIAI44QH8DHBEXAMPLE" }, "UNKNOWN_ACCESS_KEY", "credentials"],
    ["an expired token", { key: "AKIAEXPIREDEXAMPLE01", token: "tok" }, "EXPIRED_TOKEN", "credentials"],
    ["nothing listening", { endpoint: "http://127.0.0.1:9" }, "ENDPOINT_UNREACHABLE", "unreachable"],
    ["a host that does not resolve", { endpoint: "http://nonexistent.invalid" }, "ENDPOINT_NOT_RESOLVING", "unreachable"],
  ])("turns %s into one line", async (_, overrides, code, category) => {
    const error = await drsError(checkCredentials(clients(overrides)));
    expect(error).toMatchObject({ code, category });
    expect(error.message).not.toContain("\n");
    expect(error.message).not.toContain(SECRET);
  });

  it("names the action that was denied", async () => {
    const error = await drsError(listRecoveryInstances(clients({ key: "AKIALIMITEDEXAMPLE01" })));
    expect(error.code).toBe("ACCESS_DENIED");
    expect(error.message).toMatch(/drs:DescribeRecoveryInstances/);
  });

  it("rides out a throttled answer the SDK retries, and reports one past the retries", async () => {
    emulator.throttleNext(1);
    expect((await checkCredentials(clients())).account).toBe("111122223333");
    emulator.throttleNext(10);
    const error = await drsError(listRecoveryInstances(clients()));
    expect(error.code).toBe("THROTTLED");
    emulator.throttleNext(0);
  });

  it("refuses an invalid region and endpoint as bad input", () => {
    expect(() => createClients({ region: "mars-1" })).toThrow(/not an AWS region/);
    expect(() => createClients({ region: "us-east-1", endpoint: "ftp://x" })).toThrow(/--endpoint/);
    expect(createClients({ region: "ap-south-1", endpoint: "vpce-0abc.drs.ap-south-1.vpce.amazonaws.com", env: {} }).drsEndpoint).toBe("https://vpce-0abc.drs.ap-south-1.vpce.amazonaws.com");
  });

  it("waiting for the launch leaves no abort listener behind per poll (listener leak)", async () => {
    const c = clients();
    const stop = new AbortController();
    let listeners = 0;
    const signal = stop.signal;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = ((...args: Parameters<typeof add>) => {
      listeners += 1;
      add(...args);
    }) as typeof add;
    signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
      listeners -= 1;
      remove(...args);
    }) as typeof remove;
    const waiting = waitForFailbackLaunch(c, "i-0a000000000000001", { intervalMs: 20, signal }).catch(() => "aborted");
    await new Promise((r) => setTimeout(r, 400));
    expect(listeners).toBeLessThanOrEqual(1);
    stop.abort();
    expect(await waiting).toBe("aborted");
  });

  it("sees the failback launch through the states", async () => {
    const c = clients();
    const seen: string[] = [];
    const waiting = waitForFailbackLaunch(c, world.recoveryInstanceId, { intervalMs: 100, onState: (s) => seen.push(s) });
    await new Promise((r) => setTimeout(r, 300));
    await c.drs.send(new StartFailbackLaunchCommand({ recoveryInstanceIDs: [world.recoveryInstanceId] }));
    expect(await waiting).toBe("FAILBACK_LAUNCH_STATE_NOT_AVAILABLE");
    expect(seen).toEqual(["FAILBACK_NOT_STARTED", "FAILBACK_LAUNCH_STATE_NOT_AVAILABLE"]);
  });
});
