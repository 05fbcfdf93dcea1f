/*
 * How a value of `--dm-value-format` names a local disk or partition. dev-name values are the
 * kernel name ("/dev/sdb", or bare "sdb"); by-path, by-id and by-uuid values are the link names of
 * /dev/disk/by-*, bare ("pci-0000:00:10.0-scsi-0:0:0:1") or with the folder
 * ("/dev/disk/by-path/pci-..."); all-strict accepts any of these. Matching is exact (case-sensitive):
 * these names are identifiers, and a near miss must be reported, not guessed.
 */
import type { LocalDisk, LocalPartition, ValueFormat } from "./types.js";

type Named = Pick<LocalDisk | LocalPartition, "name" | "byPath" | "byId" | "byUuid">;

const FOLDERS = {
  "by-path": { dir: "/dev/disk/by-path/", list: (d: Named) => d.byPath },
  "by-id": { dir: "/dev/disk/by-id/", list: (d: Named) => d.byId },
  "by-uuid": { dir: "/dev/disk/by-uuid/", list: (d: Named) => d.byUuid },
} as const;

function byDevName(value: string, d: Named): boolean {
  return value === d.name || (!value.includes("/") && d.name === `/dev/${value}`);
}

function byLink(value: string, d: Named, format: keyof typeof FOLDERS): boolean {
  const { dir, list } = FOLDERS[format];
  const names = list(d) ?? [];
  return names.includes(value) || (value.startsWith(dir) && names.includes(value.slice(dir.length)));
}

/** Whether `value`, read in `format`, names this disk or partition. */
export function namesDevice(value: string, d: Named, format: ValueFormat): boolean {
  switch (format) {
    case "dev-name":
      return byDevName(value, d);
    case "by-path":
    case "by-id":
    case "by-uuid":
      return byLink(value, d, format);
    case "all-strict":
      return byDevName(value, d) || byLink(value, d, "by-path") || byLink(value, d, "by-id") || byLink(value, d, "by-uuid");
  }
}

/** The names a person could give for a disk in `format`, to list in a "not found" message. */
export function namesIn(d: Named, format: ValueFormat): string[] {
  switch (format) {
    case "dev-name":
      return [d.name];
    case "by-path":
    case "by-id":
    case "by-uuid":
      return [...(FOLDERS[format].list(d) ?? [])];
    case "all-strict":
      return [d.name, ...(d.byPath ?? []), ...(d.byId ?? []), ...(d.byUuid ?? [])];
  }
}
