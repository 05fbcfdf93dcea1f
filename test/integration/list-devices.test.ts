/* `failback-client --list-devices` as a process: on a fake machine and on this machine itself. */
import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildFakeMachine, SAMPLE_MACHINE } from "../devices/fake-machine.js";
import { dist } from "./world.js";

const run = promisify(execFile);
let root: string;
beforeAll(async () => {
  root = await buildFakeMachine(SAMPLE_MACHINE);
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe("failback-client --list-devices", () => {
  it("--json on a fake machine lists every disk with its names and refusals", async () => {
    const { stdout } = await run(process.execPath, [dist("failback-client"), "--list-devices", "--json", "--system-root", root]);
    const { disks } = JSON.parse(stdout) as { disks: { name: string; bytes: number; target: boolean; refusals: string[]; byPath: string[] }[] };
    const byName = Object.fromEntries(disks.map((d) => [d.name, d]));
    expect(byName["/dev/sdb"]).toMatchObject({ bytes: 10468982784, target: true, refusals: [] });
    expect(byName["/dev/sda"]?.byPath).toEqual(["pci-0000:00:10.0-scsi-0:0:0:0"]);
    expect(byName["/dev/xvdf"]).toMatchObject({ target: false, refusals: ["mounted at /mnt/data (xvdf1)"] });
    expect(byName["/dev/sdc"]?.target).toBe(false);
    expect(byName["/dev/loop0"]).toMatchObject({ target: false, refusals: ["a loop device is not offered as a target"] });
  });

  it("text on a fake machine, through FAILBACK_SYSTEM_ROOT", async () => {
    const { stdout } = await run(process.execPath, [dist("failback-client"), "--list-devices"], { env: { ...process.env, FAILBACK_SYSTEM_ROOT: root } });
    expect(stdout).toContain("/dev/sdb  9.75 GiB (10468982784 bytes)  Virtual disk");
    expect(stdout).toContain("    by-path  pci-0000:00:10.0-scsi-0:0:0:0");
    expect(stdout).toContain("    partition /dev/sda2: 0b1c2d3e-aaaa-bbbb-cccc-111122223333");
    expect(stdout).toContain("    target: no (used as swap (vdd1))");
  });

  it("--json on this machine", async () => {
    const { stdout } = await run(process.execPath, [dist("failback-client"), "--list-devices", "--json"]);
    const { disks } = JSON.parse(stdout) as { disks: { name: string; bytes: number }[] };
    for (const d of disks) expect(d.bytes).toBeGreaterThan(0);
  });
});
