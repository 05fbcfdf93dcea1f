/*
 * Who this machine is, for matching it to its DRS source server: the MACs of its physical NICs,
 * the SMBIOS system UUID, hostname and FQDN, and its RAM. Read under the same root folder as the
 * inventory. The FQDN comes from systeminformation on the real machine (it asks the resolver the
 * way `hostname -f` does); under a fake root, the hostname stands in for it.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { hostname as osHostname } from "node:os";
import { join } from "node:path";
import si from "systeminformation";

export interface MachineIdentity {
  macs: string[];
  smbiosUuid: string | null;
  hostname: string;
  fqdn: string;
  ramBytes: number;
}

/** The DRS Failback Client's own minimum. */
export const MIN_RAM_BYTES = 4 * 2 ** 30;
const FQDN_TIMEOUT_MS = 3_000;

async function readText(path: string): Promise<string | null> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch {
    return null;
  }
}

async function physicalMacs(root: string): Promise<string[]> {
  const dir = join(root, "sys", "class", "net");
  const names = await readdir(dir).catch(() => [] as string[]);
  const macs: string[] = [];
  for (const name of names.sort()) {
    // Virtual interfaces (lo, bridges, veth, tun) have no `device` link in sysfs.
    const physical = await stat(join(dir, name, "device")).then(() => true, () => false);
    const mac = (await readText(join(dir, name, "address")))?.toLowerCase();
    if (physical && mac && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac) && mac !== "00:00:00:00:00:00") macs.push(mac);
  }
  return [...new Set(macs)];
}

/** SMBIOS UUID in lowercase canonical form, or null when unreadable (non-root) or unset. */
export function normalizeUuid(text: string | null): string | null {
  const uuid = text?.trim().toLowerCase() ?? "";
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid)) return null;
  if (/^0{8}-0{4}-0{4}-0{4}-0{12}$/.test(uuid) || /^f{8}-f{4}-f{4}-f{4}-f{12}$/.test(uuid)) return null;
  return uuid;
}

/**
 * Both spellings of an SMBIOS UUID: as the kernel shows it, and with its first three groups
 * byte-swapped, as VMware (and so DRS's vmWareUuid hint) may spell the same UUID.
 */
export function uuidSpellings(uuid: string): string[] {
  const swap = (hex: string) => hex.match(/../g)?.reverse().join("") ?? hex;
  const [a = "", b = "", c = "", ...rest] = uuid.toLowerCase().split("-");
  return [...new Set([uuid.toLowerCase(), [swap(a), swap(b), swap(c), ...rest].join("-")])];
}

async function fqdnOf(root: string, hostname: string): Promise<string> {
  if (root !== "/") return hostname;
  const fromSi = si.osInfo().then((info) => info.fqdn || hostname, () => hostname);
  const timeout = new Promise<string>((resolve) => setTimeout(() => resolve(hostname), FQDN_TIMEOUT_MS).unref());
  return Promise.race([fromSi, timeout]);
}

export async function readIdentity(options: { root?: string } = {}): Promise<MachineIdentity> {
  const root = options.root ?? "/";
  const hostname = (await readText(join(root, "proc", "sys", "kernel", "hostname"))) || osHostname();
  const meminfo = (await readText(join(root, "proc", "meminfo"))) ?? "";
  const kib = Number(/^MemTotal:\s+(\d+)\s+kB/m.exec(meminfo)?.[1] ?? "0");
  const [macs, fqdn] = await Promise.all([physicalMacs(root), fqdnOf(root, hostname)]);
  return {
    macs,
    smbiosUuid: normalizeUuid(await readText(join(root, "sys", "class", "dmi", "id", "product_uuid"))),
    hostname,
    fqdn,
    ramBytes: kib * 1024,
  };
}

/** A warning below the DRS Failback Client's 4 GiB minimum; the failback goes on. */
export function lowRamWarning(identity: MachineIdentity): string | undefined {
  if (identity.ramBytes === 0 || identity.ramBytes >= MIN_RAM_BYTES) return undefined;
  return `this server has ${(identity.ramBytes / 2 ** 30).toFixed(1)} GiB of RAM, below the 4 GiB the DRS Failback Client asks for; the failback goes on, but may be slower`;
}
