/*
 * The mapped disks looked at again before the first write (steps/confirm-targets.ts): each fake
 * machine below is the same server after pairing waited, with one thing changed.
 */
import { execFileSync } from "node:child_process";
import { rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { confirmTargets } from "../../src/cli/steps/confirm-targets.js";
import type { Plan } from "../../src/cli/steps/plan.js";
import { readInventory } from "../../src/devices/index.js";
import type { RecoveryInstanceView } from "../../src/drs/index.js";
import { buildFakeMachine, type FakeMachine } from "../devices/fake-machine.js";
import { canUseLoops } from "../integration/loops.js";

const roots: string[] = [];
afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});
async function machine(spec: FakeMachine): Promise<string> {
  const root = await buildFakeMachine(spec);
  roots.push(root);
  return root;
}

const sdb = { name: "sdb", sectors: 20971520, dev: "8:16", model: "PERC H730", serial: "S-0042" };
const server: FakeMachine = { disks: [{ name: "sda", sectors: 20971520, dev: "8:0", model: "PERC H730", serial: "S-0001" }, sdb] };
const instance = { id: "i-0123456789abcdef0", disks: [{ deviceName: "/dev/xvda", bytes: 10 * 2 ** 30 }] } as RecoveryInstanceView;

async function planOnto(root: string, image?: { path: string; bytes: number }) {
  const planned = await readInventory({ root });
  const local = planned.find((d) => d.name === "/dev/sdb")!;
  const mappings = [{ recoveryDisk: instance.disks[0]!, localDisk: local }];
  if (image) mappings.push({ recoveryDisk: { deviceName: "/dev/xvdb", bytes: image.bytes }, localDisk: { name: image.path, bytes: image.bytes, byPath: [], byId: [], byUuid: [] } as never });
  const plan = { instance, mappings, agent: { host: "127.0.0.1", port: 1500 }, throttleMbps: 0 } as Plan;
  return { plan, planned };
}

describe("confirming the targets before the first write", () => {
  it("lets an unchanged server through", async () => {
    const root = await machine(server);
    const { plan, planned } = await planOnto(root);
    await expect(confirmTargets(plan, planned, { systemRoot: root })).resolves.toBeUndefined();
  });

  it.each([
    ["another disk under the name (replugged)", { ...server, disks: [server.disks[0]!, { ...sdb, serial: "S-0777" }] }, /\/dev\/sdb is another disk now \(10\.00 GiB, PERC H730, serial S-0777; the plan's was 10\.00 GiB, PERC H730, serial S-0042\)/],
    ["a disk that is gone", { ...server, disks: [server.disks[0]!] }, /\/dev\/sdb is gone/],
    ["a disk mounted since", { ...server, mounts: [{ dev: "8:16", mountPoint: "/mnt/x", fsType: "ext4", source: "/dev/sdb" }] }, /\/dev\/sdb cannot receive a volume any more: .*mounted/],
  ] as [string, FakeMachine, RegExp][])("refuses %s: TARGET_CHANGED, exit 2, nothing written", async (_, after, message) => {
    const { plan, planned } = await planOnto(await machine(server));
    const error = await confirmTargets(plan, planned, { systemRoot: await machine(after) }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "TARGET_CHANGED", exitCode: 2 });
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toMatch(/Nothing was written; check the disks and run again$/);
  });

  it("refuses an image file whose size changed", async () => {
    const root = await machine(server);
    const path = join(root, "target.img");
    await writeFile(path, "");
    await truncate(path, 2 ** 20);
    const { plan, planned } = await planOnto(root, { path, bytes: 2 ** 20 });
    await expect(confirmTargets(plan, planned, { systemRoot: root })).resolves.toBeUndefined();
    await truncate(path, 2 ** 21);
    await expect(confirmTargets(plan, planned, { systemRoot: root })).rejects.toMatchObject({ code: "TARGET_CHANGED" });
  });

  it.skipIf(!canUseLoops)("refuses an image file that a loop device was set up on meanwhile (root)", async () => {
    const root = await machine(server);
    const path = join(root, "looped.img");
    await writeFile(path, "");
    await truncate(path, 2 ** 20);
    const { plan, planned } = await planOnto(root, { path, bytes: 2 ** 20 });
    const loop = execFileSync("losetup", ["--find", "--show", path], { encoding: "utf8" }).trim();
    try {
      const error = await confirmTargets(plan, planned, { systemRoot: root }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "TARGET_CHANGED" });
      expect((error as Error).message).toContain(`looped.img cannot receive a volume any more: backs ${loop.slice(5)}`);
    } finally {
      execFileSync("losetup", ["-d", loop]);
    }
  });
});
