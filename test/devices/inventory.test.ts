import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readInventory, type DiskInfo } from "../../src/devices/index.js";
import { buildFakeMachine, SAMPLE_MACHINE } from "./fake-machine.js";

let root: string;
let disks: DiskInfo[];
const disk = (name: string) => {
  const d = disks.find((x) => x.name === name);
  if (!d) throw new Error(`${name} not in inventory: ${disks.map((x) => x.name).join(", ")}`);
  return d;
};

beforeAll(async () => {
  root = await buildFakeMachine(SAMPLE_MACHINE);
  disks = await readInventory({ root });
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe("readInventory on a fake machine", () => {
  it("lists whole disks only: no partitions, no dm holders, no empty loop devices", () => {
    expect(disks.map((d) => d.name)).toEqual(["/dev/loop0", "/dev/nvme0n1", "/dev/sda", "/dev/sdb", "/dev/sdc", "/dev/sdd", "/dev/sr0", "/dev/vdc", "/dev/vdd", "/dev/xvdf"]);
  });

  it("reads sizes exactly, fractional GiB included, and the sysfs facts", () => {
    expect(disk("/dev/sdb").bytes).toBe(9.75 * 2 ** 30);
    expect(disk("/dev/sda")).toMatchObject({ bytes: 10 * 2 ** 30, sectors: 20971520, model: "PERC H730", vendor: "DELL", serial: "S1", rotational: true, kind: "disk", logicalBlockSize: 512 });
    expect(disk("/dev/nvme0n1").kind).toBe("nvme");
    expect(disk("/dev/xvdf").kind).toBe("xen");
    expect(disk("/dev/vdc").kind).toBe("virtio");
  });

  it("gives each disk its by-path/by-id names and keeps a partition's names under the partition", () => {
    const sda = disk("/dev/sda");
    expect(sda.byPath).toEqual(["pci-0000:00:10.0-scsi-0:0:0:0"]);
    expect(sda.byId).toEqual(["wwn-0x5000c500a1b2c3d4"]);
    expect(sda.byUuid).toEqual([]);
    expect(sda.partitions).toEqual([
      { name: "/dev/sda1", byPath: ["pci-0000:00:10.0-scsi-0:0:0:0-part1"], byId: [], byUuid: [] },
      { name: "/dev/sda2", byPath: [], byId: [], byUuid: ["0b1c2d3e-aaaa-bbbb-cccc-111122223333"] },
    ]);
  });

  it.each([
    ["/dev/xvdf", "mounted at /mnt/data (xvdf1)"],
    ["/dev/vdd", "used as swap (vdd1)"],
    ["/dev/vdc", "held by dm-0 (LVM vg0-data)"],
    ["/dev/sdc", "it holds the medium the live system booted from (/run/live/medium)"],
    ["/dev/sdd", "read-only"],
  ])("refuses %s: %s", (name, reason) => {
    expect(disk(name).refusals).toEqual([reason]);
    expect(disk(name).refusal).toBe(reason);
  });

  it("offers plain disks and not loop, optical or RAM devices unless loop is allowed", async () => {
    expect(disk("/dev/sda")).toMatchObject({ offered: true, refusals: [] });
    expect(disk("/dev/sda").refusal).toBeUndefined();
    expect(disk("/dev/sr0").offered).toBe(false);
    expect(disk("/dev/loop0").offered).toBe(false);
    const withLoop = await readInventory({ root, allowLoop: true });
    expect(withLoop.find((d) => d.name === "/dev/loop0")?.offered).toBe(true);
    expect(withLoop.find((d) => d.name === "/dev/sr0")?.offered).toBe(false);
  });
});

describe("readInventory on this machine", () => {
  it("reads the real /sys without failing", async () => {
    const real = await readInventory({});
    for (const d of real) expect(d.bytes).toBe(d.sectors * 512);
  });
});
