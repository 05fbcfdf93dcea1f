/*
 * The whole disks of this machine, read from sysfs, /dev/disk/by-* and /proc under one root folder
 * (so a test can build a whole fake machine in a temporary folder). Invariants:
 * - only whole disks are listed; a partition's persistent names are kept under its disk, so a
 *   mapping naming a partition can be refused by name;
 * - every reason a disk must not be written is collected in `refusals` (mounted, swap, held,
 *   boot medium, read-only); a disk with any refusal is never a target;
 * - loop devices, RAM disks, zram and optical drives are not offered, except loop devices when
 *   asked for (the tests use them as real block devices).
 * systeminformation's blockDevices() would give model and serial, but it reads only the real /sys
 * and /dev through lsblk and cannot be pointed at a root folder, so sysfs is read directly here.
 */
import { readdir, readFile, readlink } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import type { LocalDisk, LocalPartition } from "../mapping/types.js";
import { readMounts, readSwaps, type Mount } from "./proc.js";

export type DiskKind = "disk" | "nvme" | "xen" | "virtio" | "loop" | "ram" | "zram" | "optical" | "other";

export interface DiskInfo extends LocalDisk {
  kernelName: string;
  kind: DiskKind;
  /** Size in 512-byte sectors, as sysfs counts it whatever the logical block size. */
  sectors: number;
  logicalBlockSize: number;
  readOnly: boolean;
  removable: boolean;
  rotational: boolean;
  model: string | null;
  serial: string | null;
  vendor: string | null;
  /** Where it or any of its partitions is mounted. */
  mountpoints: string[];
  /** Every reason this disk must not be written; empty when it may be a target. */
  refusals: string[];
  /** False for the kinds that are not offered as targets (loop unless allowed, ram, zram, optical). */
  offered: boolean;
  partitions: LocalPartition[];
}

export interface InventoryOptions {
  /** The folder holding sys/, dev/ and proc/; "/" for the real machine. */
  root?: string;
  /** Offer loop devices as targets. */
  allowLoop?: boolean;
}

/** Mount points where Debian's live-boot (and casper) keep the medium the live system booted from. */
const LIVE_MEDIUM_MOUNTS = ["/run/live/medium", "/lib/live/mount/medium", "/run/initramfs/live", "/cdrom"];

async function readText(path: string): Promise<string | null> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch {
    return null;
  }
}

async function readNumber(path: string): Promise<number | null> {
  const text = await readText(path);
  if (text === null || text === "") return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

async function list(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).sort();
  } catch {
    return [];
  }
}

function kindOf(name: string): DiskKind | "skip" {
  if (/^loop\d+$/.test(name)) return "loop";
  if (/^ram\d+$/.test(name)) return "ram";
  if (/^zram\d+$/.test(name)) return "zram";
  if (/^sr\d+$/.test(name)) return "optical";
  if (/^nvme\d+n\d+$/.test(name)) return "nvme";
  if (/^xvd[a-z]+$/.test(name)) return "xen";
  if (/^vd[a-z]+$/.test(name)) return "virtio";
  if (/^(sd|hd)[a-z]+$/.test(name)) return "disk";
  // dm-*, md*: virtual devices built on top of disks; they are holders, never targets themselves.
  if (/^(dm-|md)\d+/.test(name)) return "skip";
  return "other";
}

function describeHolder(holder: string, dmName: string | null): string {
  if (holder.startsWith("md")) return `${holder} (md RAID)`;
  if (dmName) return `${holder} (${dmName.includes("-") ? "LVM " : "device-mapper "}${dmName})`;
  return holder;
}

interface BlockNode {
  kernelName: string;
  devNumber: string | null;
  holders: string[];
}

async function readNode(sysBlock: string, dir: string, kernelName: string): Promise<BlockNode> {
  const holders: string[] = [];
  for (const holder of await list(join(dir, "holders"))) {
    holders.push(describeHolder(holder, await readText(join(sysBlock, holder, "dm", "name"))));
  }
  return { kernelName, devNumber: await readText(join(dir, "dev")), holders };
}

/** /dev/disk/by-<scheme>: link name -> kernel name of what it points at. */
async function readLinks(root: string, scheme: string): Promise<Map<string, string[]>> {
  const dir = join(root, "dev", "disk", `by-${scheme}`);
  const byTarget = new Map<string, string[]>();
  for (const link of await list(dir)) {
    let target: string;
    try {
      target = basename(resolve(dir, await readlink(join(dir, link))));
    } catch {
      continue;
    }
    byTarget.set(target, [...(byTarget.get(target) ?? []), link]);
  }
  return byTarget;
}

function mountedBy(mounts: Mount[], nodes: BlockNode[]): Mount[] {
  const numbers = new Set(nodes.map((n) => n.devNumber).filter((n): n is string => n !== null));
  const paths = new Set(nodes.map((n) => `/dev/${n.kernelName}`));
  return mounts.filter((m) => numbers.has(m.devNumber) || paths.has(m.source));
}

/** Reads every whole disk of the machine under `root`, with its names and safety facts. */
export async function readInventory(options: InventoryOptions = {}): Promise<DiskInfo[]> {
  const root = options.root ?? "/";
  const sysBlock = join(root, "sys", "block");
  const [mounts, swaps, byPath, byId, byUuid] = await Promise.all([
    readMounts(root),
    readSwaps(root),
    readLinks(root, "path"),
    readLinks(root, "id"),
    readLinks(root, "uuid"),
  ]);
  const names = (k: string) => ({ byPath: byPath.get(k) ?? [], byId: byId.get(k) ?? [], byUuid: byUuid.get(k) ?? [] });

  const disks: DiskInfo[] = [];
  for (const kernelName of await list(sysBlock)) {
    const kind = kindOf(kernelName);
    if (kind === "skip") continue;
    const dir = join(sysBlock, kernelName);
    const sectors = (await readNumber(join(dir, "size"))) ?? 0;
    // An unattached loop device or a drive without media has no size: nothing to list.
    if (sectors === 0) continue;

    const node = await readNode(sysBlock, dir, kernelName);
    const partitionNodes: BlockNode[] = [];
    for (const entry of await list(dir)) {
      if ((await readText(join(dir, entry, "partition"))) !== null) partitionNodes.push(await readNode(sysBlock, join(dir, entry), entry));
    }
    const all = [node, ...partitionNodes];
    const mounted = mountedBy(mounts, all);
    const readOnly = (await readNumber(join(dir, "ro"))) === 1;

    const refusals: string[] = [];
    const liveMedium = mounted.find((m) => LIVE_MEDIUM_MOUNTS.includes(m.mountPoint) || m.fsType === "iso9660");
    if (liveMedium) refusals.push(`it holds the medium the live system booted from (${liveMedium.mountPoint})`);
    for (const m of mounted) {
      if (m !== liveMedium) refusals.push(`mounted at ${m.mountPoint}${m.source !== `/dev/${kernelName}` ? ` (${basename(m.source)})` : ""}`);
    }
    for (const n of all) if (swaps.includes(`/dev/${n.kernelName}`)) refusals.push(`used as swap (${n.kernelName})`);
    for (const n of all) for (const h of n.holders) refusals.push(`held by ${h}${n !== node ? ` through ${n.kernelName}` : ""}`);
    if (readOnly) refusals.push("read-only");

    const offered = kind === "loop" ? options.allowLoop === true : kind !== "ram" && kind !== "zram" && kind !== "optical";
    disks.push({
      name: `/dev/${kernelName}`,
      kernelName,
      kind,
      bytes: sectors * 512,
      sectors,
      logicalBlockSize: (await readNumber(join(dir, "queue", "logical_block_size"))) ?? 512,
      readOnly,
      removable: (await readNumber(join(dir, "removable"))) === 1,
      rotational: (await readNumber(join(dir, "queue", "rotational"))) === 1,
      model: (await readText(join(dir, "device", "model"))) || null,
      serial: (await readText(join(dir, "device", "serial"))) || (await readText(join(dir, "serial"))) || null,
      vendor: (await readText(join(dir, "device", "vendor"))) || null,
      mountpoints: mounted.map((m) => m.mountPoint),
      ...names(kernelName),
      partitions: partitionNodes.map((p) => ({ name: `/dev/${p.kernelName}`, ...names(p.kernelName) })),
      refusals,
      refusal: refusals.length > 0 ? refusals.join("; ") : undefined,
      offered,
    });
  }
  return disks;
}
