/*
 * Builds a fake machine in a temporary folder: sys/block with disks and partitions, holders, loop
 * devices' backing files, dev/disk/by-* links, proc mountinfo, swaps and meminfo, sys/class/net
 * and dmi. Pass its root to readInventory/readIdentity or to failback-client --system-root.
 */
import { mkdir, mkdtemp, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export interface FakeDisk {
  name: string;
  sectors: number;
  dev: string;
  model?: string;
  serial?: string;
  vendor?: string;
  ro?: boolean;
  removable?: boolean;
  rotational?: boolean;
  holders?: { name: string; dmName?: string }[];
  partitions?: { name: string; sectors: number; dev: string; holders?: { name: string; dmName?: string }[] }[];
  /** A loop device's loop/ folder: what backs it (backing_dev and backing_inode only where given). */
  loop?: { backingFile: string; backingDev?: string; backingInode?: string };
}

export interface FakeMachine {
  disks: FakeDisk[];
  links?: { scheme: "path" | "id" | "uuid" | "label"; name: string; target: string }[];
  mounts?: { dev: string; mountPoint: string; fsType: string; source: string }[];
  swaps?: string[];
  nics?: { name: string; mac: string; physical: boolean }[];
  productUuid?: string;
  hostname?: string;
  memTotalKiB?: number;
}

async function put(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${text}\n`);
}

export async function buildFakeMachine(spec: FakeMachine): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "fake-machine-"));
  for (const d of spec.disks) {
    const dir = join(root, "sys", "block", d.name);
    await put(join(dir, "size"), String(d.sectors));
    await put(join(dir, "dev"), d.dev);
    await put(join(dir, "ro"), d.ro ? "1" : "0");
    await put(join(dir, "removable"), d.removable ? "1" : "0");
    await put(join(dir, "queue", "rotational"), d.rotational ? "1" : "0");
    await put(join(dir, "queue", "logical_block_size"), "512");
    if (d.model) await put(join(dir, "device", "model"), d.model);
    if (d.serial) await put(join(dir, "device", "serial"), d.serial);
    if (d.vendor) await put(join(dir, "device", "vendor"), d.vendor);
    await mkdir(join(dir, "holders"), { recursive: true });
    for (const h of d.holders ?? []) {
      await mkdir(join(dir, "holders", h.name), { recursive: true });
      if (h.dmName) await put(join(root, "sys", "block", h.name, "dm", "name"), h.dmName);
    }
    if (d.loop) {
      await put(join(dir, "loop", "backing_file"), d.loop.backingFile);
      if (d.loop.backingDev !== undefined) await put(join(dir, "loop", "backing_dev"), d.loop.backingDev);
      if (d.loop.backingInode !== undefined) await put(join(dir, "loop", "backing_inode"), d.loop.backingInode);
    }
    for (const p of d.partitions ?? []) {
      await put(join(dir, p.name, "partition"), "1");
      await put(join(dir, p.name, "size"), String(p.sectors));
      await put(join(dir, p.name, "dev"), p.dev);
      await mkdir(join(dir, p.name, "holders"), { recursive: true });
      for (const h of p.holders ?? []) {
        await mkdir(join(dir, p.name, "holders", h.name), { recursive: true });
        if (h.dmName) await put(join(root, "sys", "block", h.name, "dm", "name"), h.dmName);
        await put(join(root, "sys", "block", h.name, "size"), "1000");
      }
    }
  }
  for (const link of spec.links ?? []) {
    const dir = join(root, "dev", "disk", `by-${link.scheme}`);
    await mkdir(dir, { recursive: true });
    await symlink(`../../${link.target}`, join(dir, link.name));
  }
  const mountinfo = (spec.mounts ?? []).map((m, i) => `${20 + i} 1 ${m.dev} / ${m.mountPoint.replace(/ /g, "\\040")} rw,relatime shared:1 - ${m.fsType} ${m.source} rw`);
  await put(join(root, "proc", "self", "mountinfo"), mountinfo.join("\n"));
  await put(join(root, "proc", "swaps"), ["Filename\tType\tSize\tUsed\tPriority", ...(spec.swaps ?? []).map((s) => `${s}\tpartition\t1000\t0\t-2`)].join("\n"));
  await put(join(root, "proc", "meminfo"), `MemTotal:       ${spec.memTotalKiB ?? 8_000_000} kB\nMemFree:  1000 kB`);
  await put(join(root, "proc", "sys", "kernel", "hostname"), spec.hostname ?? "fakehost");
  if (spec.productUuid) await put(join(root, "sys", "class", "dmi", "id", "product_uuid"), spec.productUuid);
  for (const nic of spec.nics ?? []) {
    await put(join(root, "sys", "class", "net", nic.name, "address"), nic.mac);
    if (nic.physical) await mkdir(join(root, "sys", "class", "net", nic.name, "device"), { recursive: true });
  }
  return root;
}

/** A server with one of everything: the machine most tests use. */
export const SAMPLE_MACHINE: FakeMachine = {
  disks: [
    {
      name: "sda", sectors: 20971520, dev: "8:0", model: "PERC H730", vendor: "DELL", serial: "S1", rotational: true,
      partitions: [{ name: "sda1", sectors: 1048576, dev: "8:1" }, { name: "sda2", sectors: 19000000, dev: "8:2" }],
    },
    { name: "sdb", sectors: 20447232, dev: "8:16", model: "Virtual disk" }, // 9.75 GiB
    { name: "nvme0n1", sectors: 41943040, dev: "259:0", model: "Samsung SSD 980" },
    { name: "xvdf", sectors: 2097152, dev: "202:80", partitions: [{ name: "xvdf1", sectors: 2000000, dev: "202:81" }] },
    { name: "vdc", sectors: 4194304, dev: "252:32", holders: [{ name: "dm-0", dmName: "vg0-data" }] },
    { name: "vdd", sectors: 4194304, dev: "252:48", partitions: [{ name: "vdd1", sectors: 4000000, dev: "252:49" }] },
    { name: "sdc", sectors: 3000000, dev: "8:32", model: "Live USB", removable: true },
    { name: "sdd", sectors: 4194304, dev: "8:48", ro: true },
    { name: "sr0", sectors: 700000, dev: "11:0" },
    { name: "loop0", sectors: 4194304, dev: "7:0" },
    { name: "loop1", sectors: 0, dev: "7:1" },
    { name: "dm-0", sectors: 4194304, dev: "253:0" },
  ],
  links: [
    { scheme: "path", name: "pci-0000:00:10.0-scsi-0:0:0:0", target: "sda" },
    { scheme: "path", name: "pci-0000:00:10.0-scsi-0:0:0:0-part1", target: "sda1" },
    { scheme: "id", name: "wwn-0x5000c500a1b2c3d4", target: "sda" },
    { scheme: "path", name: "pci-0000:00:10.0-scsi-0:0:1:0", target: "sdb" },
    { scheme: "id", name: "nvme-Samsung_SSD_980_S1", target: "nvme0n1" },
    { scheme: "uuid", name: "0b1c2d3e-aaaa-bbbb-cccc-111122223333", target: "sda2" },
  ],
  mounts: [
    { dev: "202:81", mountPoint: "/mnt/data", fsType: "ext4", source: "/dev/xvdf1" },
    { dev: "8:32", mountPoint: "/run/live/medium", fsType: "iso9660", source: "/dev/sdc" },
  ],
  swaps: ["/dev/vdd1"],
  nics: [
    { name: "eth0", mac: "02:00:00:AA:BB:01", physical: true },
    { name: "lo", mac: "00:00:00:00:00:00", physical: false },
    { name: "br0", mac: "02:00:00:aa:bb:99", physical: false },
  ],
  productUuid: "4C4C4544-0042-3510-8052-B4C04F4B4E32",
  hostname: "web-01",
  memTotalKiB: 3_000_000,
};
