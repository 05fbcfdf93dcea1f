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

// The loop driver leaves no holders/ entry on what backs a loop device and takes no exclusive
// claim on it: only loop/backing_file says that a disk lies under a mounted loop device.
describe("disks backing a loop device", () => {
  let loopRoot: string;
  let found: DiskInfo[];
  const refusalsOf = (name: string) => found.find((d) => d.name === name)?.refusals;

  beforeAll(async () => {
    loopRoot = await buildFakeMachine({
      disks: [
        { name: "sde", sectors: 4194304, dev: "8:64" }, // under loop2, mounted
        { name: "sdf", sectors: 4194304, dev: "8:80", partitions: [{ name: "sdf1", sectors: 4000000, dev: "8:81" }] }, // sdf1 under loop3, swap
        { name: "sdg", sectors: 4194304, dev: "8:96" }, // under loop4, which is under loop5, mounted through loop5p1
        { name: "sdh", sectors: 4194304, dev: "8:112" }, // under loop6, attached and idle
        { name: "sdi", sectors: 4194304, dev: "8:128" }, // under loop7, held by LVM; named by its by-id link
        { name: "sdj", sectors: 4194304, dev: "8:144" }, // nothing on it
        { name: "loop2", sectors: 4194304, dev: "7:2", loop: { backingFile: "/dev/sde" } },
        { name: "loop3", sectors: 4000000, dev: "7:3", loop: { backingFile: "/dev/sdf1" } },
        { name: "loop4", sectors: 4194304, dev: "7:4", loop: { backingFile: "/dev/sdg" } },
        { name: "loop5", sectors: 4194304, dev: "7:5", loop: { backingFile: "/dev/loop4" }, partitions: [{ name: "loop5p1", sectors: 4000000, dev: "259:5" }] },
        { name: "loop6", sectors: 4194304, dev: "7:6", loop: { backingFile: "/dev/sdh" } },
        { name: "loop7", sectors: 4194304, dev: "7:7", ro: true, loop: { backingFile: "/dev/disk/by-id/wwn-0x5000000000000009" }, holders: [{ name: "dm-1", dmName: "vg1-lv" }] },
        { name: "loop8", sectors: 4194304, dev: "7:8", loop: { backingFile: "/var/lib/images/disk.img" } },
      ],
      links: [{ scheme: "id", name: "wwn-0x5000000000000009", target: "sdi" }],
      mounts: [
        { dev: "7:2", mountPoint: "/srv/data", fsType: "ext4", source: "/dev/loop2" },
        { dev: "259:5", mountPoint: "/srv/nested", fsType: "xfs", source: "/dev/loop5p1" },
      ],
      swaps: ["/dev/loop3"],
    });
    // Not offered (no allowLoop): what backs a loop device is refused all the same.
    found = await readInventory({ root: loopRoot });
  });
  afterAll(() => rm(loopRoot, { recursive: true, force: true }));

  it.each([
    ["/dev/sde", "backs loop2 (mounted at /srv/data)"],
    ["/dev/sdf", "backs loop3 through sdf1 (used as swap (loop3))"],
    ["/dev/sdg", "backs loop4 (backs loop5 (mounted at /srv/nested (loop5p1)))"],
    ["/dev/sdh", "backs loop6"],
    ["/dev/sdi", "backs loop7 (held by dm-1 (LVM vg1-lv))"],
  ])("refuses %s: %s", (name, reason) => {
    expect(refusalsOf(name)).toEqual([reason]);
  });

  it("leaves a disk under no loop device alone and records each loop device's backing", () => {
    expect(refusalsOf("/dev/sdj")).toEqual([]);
    expect(found.find((d) => d.name === "/dev/loop8")?.loopBacking).toEqual({ path: "/var/lib/images/disk.img", blockDev: null, fileId: null });
    expect(found.find((d) => d.name === "/dev/sdj")?.loopBacking).toBeUndefined();
  });
});

// The ISO's "toram" boot entry copies the live system to RAM and unmounts the medium: its label
// (iso-build/build.sh) is then all that tells the USB stick from a disk.
describe("the live system's boot medium once unmounted", () => {
  it.each([
    ["the whole disk", "sdc", "it holds the live system's boot medium (labelled FAILBACK_LIVECD)"],
    ["a partition", "sdc1", "it holds the live system's boot medium (labelled FAILBACK_LIVECD on sdc1)"],
  ])("refuses the disk when the label is on %s", async (_, target, reason) => {
    const labelRoot = await buildFakeMachine({
      disks: [
        { name: "sda", sectors: 4194304, dev: "8:0" },
        { name: "sdc", sectors: 3000000, dev: "8:32", removable: true, partitions: [{ name: "sdc1", sectors: 2900000, dev: "8:33" }] },
      ],
      links: [{ scheme: "label", name: "FAILBACK_LIVECD", target }],
    });
    try {
      const found = await readInventory({ root: labelRoot });
      expect(found.find((d) => d.name === "/dev/sdc")?.refusals).toEqual([reason]);
      expect(found.find((d) => d.name === "/dev/sda")?.refusals).toEqual([]);
    } finally {
      await rm(labelRoot, { recursive: true, force: true });
    }
  });

  it("gives one reason when the labelled medium is also mounted", async () => {
    const labelRoot = await buildFakeMachine({
      disks: [{ name: "sdc", sectors: 3000000, dev: "8:32" }],
      links: [{ scheme: "label", name: "FAILBACK_LIVECD", target: "sdc" }],
      mounts: [{ dev: "8:32", mountPoint: "/run/live/medium", fsType: "iso9660", source: "/dev/sdc" }],
    });
    try {
      const [sdc] = await readInventory({ root: labelRoot });
      expect(sdc?.refusals).toEqual(["it holds the medium the live system booted from (/run/live/medium)"]);
    } finally {
      await rm(labelRoot, { recursive: true, force: true });
    }
  });
});
