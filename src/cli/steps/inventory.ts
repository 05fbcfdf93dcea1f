/*
 * Step 5: what this server has. The disks (with every reason one must not be written) and the
 * identity used to recognise its own Recovery Instance. Disk-image files named in a dev-name
 * mapping join the list as disks of their file's size: failing back into a VM image, as the demo
 * and the tests do without root.
 */
import { stat } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import { fileIdentity, lowRamWarning, readFilesInUse, readIdentity, readInventory, type DiskInfo, type MachineIdentity } from "../../devices/index.js";
import type { LocalDisk, MappingEntry } from "../../mapping/types.js";
import { EXCLUDE } from "../../mapping/types.js";
import { CliError, EXIT } from "../exit-codes.js";
import type { Log } from "../log.js";
import type { Settings } from "../settings.js";

export interface Inventory {
  disks: DiskInfo[];
  identity: MachineIdentity;
}

export async function takeInventory(settings: Readonly<Settings>, log: Log, warn: (line: string) => void): Promise<Inventory> {
  const [disks, identity] = await Promise.all([
    readInventory({ root: settings.systemRoot, allowLoop: settings.allowLoop }),
    readIdentity({ root: settings.systemRoot }),
  ]);
  const ramWarning = lowRamWarning(identity);
  if (ramWarning) warn(ramWarning);
  log.info(
    `this server: ${identity.hostname} (${identity.fqdn}), SMBIOS UUID ${identity.smbiosUuid ?? "unknown"}, MACs ${identity.macs.join(" ") || "none"}, ` +
      `RAM ${(identity.ramBytes / 2 ** 30).toFixed(1)} GiB`,
  );
  for (const d of disks) log.info(`local disk ${d.name}: ${d.bytes} bytes${d.refusal ? `, not a target: ${d.refusal}` : ""}`);
  return { disks, identity };
}

/**
 * Regular files named as local disks in a dev-name mapping become disks of the file's size. A name
 * that is neither a known disk nor an existing regular file is left for the mapping library to
 * report, so every problem is listed at once. One file under two names ("a.img" and "./a.img", or
 * a link to it) is refused here: the library tells disks apart by name, and both volumes would
 * land in the one file. A file the kernel uses as a disk (a loop device's backing file, mounted or
 * not; an active swap file) carries a refusal, which the library reports as NOT_A_TARGET: the
 * loop driver and swap leave no other mark on the file (src/devices/loops.ts). `root` is where
 * /sys and /proc are read; the files themselves are the real machine's, so the default is "/".
 */
export async function imageFileDisks(entries: MappingEntry[], known: LocalDisk[], options: { root?: string } = {}): Promise<LocalDisk[]> {
  const names = new Set(known.map((d) => d.name));
  const files: LocalDisk[] = [];
  const seen = new Map<string, string>();
  let inUse: Map<string, string[]> | undefined;
  for (const { failbackClientDeviceName: name } of entries) {
    if (name === EXCLUDE || names.has(name) || name.startsWith("/dev/")) continue;
    const path = isAbsolute(name) ? name : resolve(name);
    const info = await stat(path, { bigint: true }).catch(() => null);
    if (!info?.isFile()) continue;
    const file = fileIdentity(info);
    const first = seen.get(file);
    if (first !== undefined) {
      throw new CliError("LOCAL_DISK_USED_TWICE", EXIT.badInput, `--device-mapping: ${first} and ${name} are the same file: each local disk receives one volume`);
    }
    seen.set(file, name);
    names.add(name);
    inUse ??= await readFilesInUse({ root: options.root });
    const refusals = inUse.get(file) ?? [];
    files.push({ name, bytes: Number(info.size), byPath: [], byId: [], byUuid: [], ...(refusals.length > 0 ? { refusal: refusals.join("; ") } : {}) });
  }
  return files;
}
