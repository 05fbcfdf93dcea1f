/*
 * The shapes the device-mapping library speaks. Entries use the DRS API's own field names so a
 * mapping read from a file, typed at a prompt or returned by DRS is one and the same thing.
 * Everything here is data: other folders (devices, drs, cli) fill these shapes from the real world.
 */

/** The value formats of `--dm-value-format`, exactly as the DRS Failback Client spells them. */
export const VALUE_FORMATS = ["dev-name", "by-path", "by-id", "by-uuid", "all-strict"] as const;
export type ValueFormat = (typeof VALUE_FORMATS)[number];

export function isValueFormat(value: unknown): value is ValueFormat {
  return typeof value === "string" && (VALUE_FORMATS as readonly string[]).includes(value);
}

/** The word that leaves a recovery volume out of the failback. */
export const EXCLUDE = "EXCLUDE";

/** One line of a device mapping, in the DRS API's shape. `failbackClientDeviceName` may be EXCLUDE. */
export interface MappingEntry {
  recoveryInstanceDeviceName: string;
  failbackClientDeviceName: string;
}

/** A volume of the Recovery Instance: DRS's `internalDeviceName` and size in bytes. */
export interface RecoveryDisk {
  deviceName: string;
  bytes: number;
}

/** Persistent names of a partition, so a value naming a partition can be refused by name. */
export interface LocalPartition {
  name: string;
  byPath: string[];
  byId: string[];
  byUuid: string[];
}

/**
 * A whole local disk (or a disk-image file, named by its path). The persistent names are as they
 * appear in /dev/disk/by-path/ etc., without the folder.
 */
export interface LocalDisk {
  name: string;
  bytes: number;
  byPath: string[];
  byId: string[];
  byUuid: string[];
  /** Partitions of this disk; a value naming one of them is refused (whole disks only). */
  partitions?: LocalPartition[];
  /** Why this disk must never be written (mounted, swap, held, boot medium, read-only); absent when it may be a target. */
  refusal?: string;
}

/** What the mapping resolves to: each recovery disk with its local disk, or null when excluded. */
export interface ResolvedMapping {
  recoveryDisk: RecoveryDisk;
  localDisk: LocalDisk | null;
}

/** The size rule's verdict; see fitsVolume. */
export type Fit = "fits" | "fractional" | "too-small";
