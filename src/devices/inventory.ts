/*
 * The whole disks of this machine, read from sysfs, /dev/disk/by-* and /proc under one root folder
 * (so a test can build a whole fake machine in a temporary folder). Invariants:
 * - only whole disks are listed; a partition's persistent names are kept under its disk, so a
 *   mapping naming a partition can be refused by name;
 * - every reason a disk must not be written is collected in `refusals` (mounted, swap, held,
 *   backing a loop device, boot medium, read-only); a disk with any refusal is never a target;
 * - what backs a loop device is refused for every loop device, offered or not, and inherits the
 *   loop device's own refusals: the loop driver leaves no holders/ entry and no exclusive claim
 *   (loops.ts), so a disk under a mounted loop device looks idle everywhere else;
 * - the boot medium is recognised by its mount point or, once unmounted (the ISO's "toram" entry),
 *   by its volume label;
 * - loop devices, RAM disks, zram and optical drives are not offered, except loop devices when
 *   asked for (the tests use them as real block devices).
 * systeminformation's blockDevices() would give model and serial, but it reads only the real /sys
 * and /dev through lsblk and cannot be pointed at a root folder, so sysfs is read directly here.
 */
import { readdir, readFile, readlink, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { LocalDisk, LocalPartition } from "../mapping/types.js";
import { fileIdentity, readLoopBacking, type LoopBacking } from "./loops.js";
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
  /** For an attached loop device: what it reads and writes. */
  loopBacking?: LoopBacking;
}

export interface InventoryOptions {
  /** The folder holding sys/, dev/ and proc/; "/" for the real machine. */
  root?: string;
  /** Offer loop devices as targets. */
  allowLoop?: boolean;
}

/** Mount points where Debian's live-boot (and casper) keep the medium the live system booted from. */
const LIVE_MEDIUM_MOUNTS = ["/run/live/medium", "/lib/live/mount/medium", "/run/initramfs/live", "/cdrom"];

/** The volume label of the failback ISO (iso-build/build.sh), as udev links it under /dev/disk/by-label. */
export const LIVE_MEDIUM_LABEL = "FAILBACK_LIVECD";

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

/** The kernel name a /dev path names under `root`: /dev/sdb, or a /dev/disk/by-* link to it; null if neither. */
async function linkTarget(root: string, path: string): Promise<string | null> {
  if (!path.startsWith("/dev/")) return null;
  try {
    return basename(resolve(dirname(join(root, path)), await readlink(join(root, path))));
  } catch {
    // Not a link (or not there, as in a fake root without device nodes): the name itself.
    return path.startsWith("/dev/disk/") ? null : basename(path);
  }
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
  const [mounts, swaps, byPath, byId, byUuid, liveLabel] = await Promise.all([
    readMounts(root),
    readSwaps(root),
    readLinks(root, "path"),
    readLinks(root, "id"),
    readLinks(root, "uuid"),
    linkTarget(root, `/dev/disk/by-label/${LIVE_MEDIUM_LABEL}`),
  ]);
  const names = (k: string) => ({ byPath: byPath.get(k) ?? [], byId: byId.get(k) ?? [], byUuid: byUuid.get(k) ?? [] });

  const disks: DiskInfo[] = [];
  const nodesOf = new Map<DiskInfo, BlockNode[]>();
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
    else if (liveLabel !== null && all.some((n) => n.kernelName === liveLabel)) {
      refusals.push(`it holds the live system's boot medium (labelled ${LIVE_MEDIUM_LABEL}${liveLabel !== kernelName ? ` on ${liveLabel}` : ""})`);
    }
    for (const m of mounted) {
      if (m !== liveMedium) refusals.push(`mounted at ${m.mountPoint}${m.source !== `/dev/${kernelName}` ? ` (${basename(m.source)})` : ""}`);
    }
    for (const n of all) if (swaps.includes(`/dev/${n.kernelName}`)) refusals.push(`used as swap (${n.kernelName})`);
    for (const n of all) for (const h of n.holders) refusals.push(`held by ${h}${n !== node ? ` through ${n.kernelName}` : ""}`);
    if (readOnly) refusals.push("read-only");

    const offered = kind === "loop" ? options.allowLoop === true : kind !== "ram" && kind !== "zram" && kind !== "optical";
    const loopBacking = kind === "loop" ? await readLoopBacking(root, dir) : null;
    const disk: DiskInfo = {
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
      refusal: undefined,
      offered,
      ...(loopBacking ? { loopBacking } : {}),
    };
    disks.push(disk);
    nodesOf.set(disk, all);
  }
  await refuseLoopBackings(root, disks, nodesOf);
  for (const d of disks) d.refusal = d.refusals.length > 0 ? d.refusals.join("; ") : undefined;
  return disks;
}

/** "backs loopN", with the loop device's refusals that concern what lies under it (not its read-only flag). */
function backsLoop(loop: DiskInfo, via: string): string {
  const inherited = loop.refusals.filter((r) => r !== "read-only");
  return `backs ${loop.kernelName}${via}${inherited.length > 0 ? ` (${inherited.join("; ")})` : ""}`;
}

/**
 * Adds "backs loopN" to each disk under a loop device, with the loop device's own refusals (where
 * it or its partitions are mounted, swap, holders, what it backs in turn), so a chain of loop
 * devices refuses the disk at its bottom.
 */
async function refuseLoopBackings(root: string, disks: DiskInfo[], nodesOf: Map<DiskInfo, BlockNode[]>): Promise<void> {
  const backed = new Map<DiskInfo, { loop: DiskInfo; through: BlockNode }[]>();
  for (const loop of disks) {
    if (!loop.loopBacking) continue;
    const { blockDev, path } = loop.loopBacking;
    const name = await linkTarget(root, path);
    for (const d of disks) {
      const through = nodesOf.get(d)?.find((n) => (blockDev !== null && n.devNumber === blockDev) || n.kernelName === name);
      if (through) backed.set(d, [...(backed.get(d) ?? []), { loop, through }]);
    }
  }
  const done = new Set<DiskInfo>();
  const visiting = new Set<DiskInfo>();
  const complete = (d: DiskInfo): void => {
    if (done.has(d) || visiting.has(d)) return; // the kernel refuses loop cycles; guard anyway
    visiting.add(d);
    for (const { loop, through } of backed.get(d) ?? []) {
      complete(loop);
      d.refusals.push(backsLoop(loop, through.kernelName !== d.kernelName ? ` through ${through.kernelName}` : ""));
    }
    visiting.delete(d);
    done.add(d);
  };
  for (const d of disks) complete(d);
}

/**
 * The files the kernel uses as disks, keyed by fileIdentity(): each loop device's backing file and
 * each swap file of /proc/swaps, with every reason it must never be written as a disk image.
 */
export async function readFilesInUse(options: Pick<InventoryOptions, "root"> = {}): Promise<Map<string, string[]>> {
  const root = options.root ?? "/";
  const uses = new Map<string, string[]>();
  const add = (id: string, reason: string) => uses.set(id, [...(uses.get(id) ?? []), reason]);
  for (const d of await readInventory({ root, allowLoop: true })) {
    if (d.loopBacking?.fileId) add(d.loopBacking.fileId, backsLoop(d, ""));
  }
  for (const path of await readSwaps(root)) {
    const info = await stat(join(root, path.replace(/ \(deleted\)$/, "")), { bigint: true }).catch(() => null);
    if (info?.isFile()) add(fileIdentity(info), "used as swap");
  }
  return uses;
}
