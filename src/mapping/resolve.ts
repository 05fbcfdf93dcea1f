/*
 * resolveDeviceMapping: parsed entries + the Recovery Instance's volumes + this server's disks ->
 * one decision per recovery volume (a local disk, or null when excluded), in the recovery
 * volumes' order.
 *
 * Every entry is checked and every problem collected before one DeviceMappingError is thrown, so a
 * person fixes the whole mapping in one go. Problem codes are listed in docs/device-mapping.md;
 * LOCAL_DISK_TOO_SMALL (TOO_SMALL_CODES) is the only one meaning "the disks are too small" rather
 * than "the input is wrong". A disk carrying a `refusal` is never returned.
 */
import { DeviceMappingError, type MappingProblem, quote, show } from "./errors.js";
import { namesDevice, namesIn } from "./local-names.js";
import { isExclude } from "./parse.js";
import { fitsVolume, tooSmall } from "./size-rule.js";
import { isValueFormat, type LocalDisk, type MappingEntry, type RecoveryDisk, type ResolvedMapping, type ValueFormat, VALUE_FORMATS } from "./types.js";

export interface ResolveOptions {
  valueFormat: ValueFormat;
  recoveryDisks: readonly RecoveryDisk[];
  localDisks: readonly LocalDisk[];
}

const LISTED = 8;

function list(names: string[]): string {
  if (names.length === 0) return "none";
  const shown = names.slice(0, LISTED).join(", ");
  return names.length > LISTED ? `${shown}, ... (${names.length - LISTED} more)` : shown;
}

/** "xvdb" and "/dev/xvdb" name the same recovery volume. */
function bare(name: string): string {
  return name.startsWith("/dev/") ? name.slice(5) : name;
}

function findRecovery(name: string, disks: readonly RecoveryDisk[]): RecoveryDisk | undefined {
  const exact = disks.find((d) => d.deviceName === name);
  if (exact) return exact;
  const loose = disks.filter((d) => bare(d.deviceName) === bare(name));
  return loose.length === 1 ? loose[0] : undefined;
}

/** Each recovery volume with its local disk (null when excluded); throws one DeviceMappingError listing every problem. */
export function resolveDeviceMapping(entries: readonly MappingEntry[], options: ResolveOptions): ResolvedMapping[] {
  const { valueFormat, recoveryDisks, localDisks } = options ?? ({} as ResolveOptions);
  if (!isValueFormat(valueFormat)) {
    throw new DeviceMappingError("INVALID_VALUE_FORMAT", show(valueFormat), `unknown value format ${quote(show(valueFormat))}: use one of ${VALUE_FORMATS.join(", ")}`);
  }
  if (!Array.isArray(entries) || !Array.isArray(recoveryDisks) || !Array.isArray(localDisks)) {
    throw new DeviceMappingError("WRONG_SHAPE", "", "resolveDeviceMapping needs lists of entries, recovery disks and local disks");
  }
  // Disks come from the program, not the person; still, a malformed one is a coded error.
  for (const d of recoveryDisks) {
    if (typeof d?.deviceName !== "string") throw new DeviceMappingError("WRONG_SHAPE", show(d?.deviceName), "every recovery disk needs a string deviceName");
    fitsVolume(d.bytes, 0);
  }
  for (const d of localDisks) {
    if (typeof d?.name !== "string") throw new DeviceMappingError("WRONG_SHAPE", show(d?.name), "every local disk needs a string name");
    fitsVolume(d.bytes, 0);
  }

  const problems: MappingProblem[] = [];
  const problem = (code: string, token: string, message: string): void => {
    problems.push({ code, token, message });
  };
  const chosen = new Map<RecoveryDisk, LocalDisk | null>();
  const users = new Map<LocalDisk, string>();
  const excluded = new Set<RecoveryDisk>();

  for (const e of entries) {
    const recoveryName: unknown = e?.recoveryInstanceDeviceName;
    const value: unknown = e?.failbackClientDeviceName;
    if (typeof recoveryName !== "string" || typeof value !== "string" || recoveryName.trim() === "" || value.trim() === "") {
      if (typeof recoveryName !== "string" || typeof value !== "string") {
        problem("NON_STRING_VALUE", show(recoveryName), "each entry needs string recoveryInstanceDeviceName and failbackClientDeviceName");
      } else problem("EMPTY_NAME", `${recoveryName}=${value}`, `${quote(`${recoveryName}=${value}`)} has an empty side`);
      // The entry's own problem is reported; do not report its volume as unmapped as well.
      const named = typeof recoveryName === "string" ? findRecovery(recoveryName, recoveryDisks) : undefined;
      if (named !== undefined && !chosen.has(named)) chosen.set(named, null);
      continue;
    }
    const recovery = findRecovery(recoveryName, recoveryDisks);
    if (recovery === undefined) {
      problem("UNKNOWN_RECOVERY_DEVICE", recoveryName, `the Recovery Instance has no volume ${quote(recoveryName)}; its volumes are ${list(recoveryDisks.map((d) => d.deviceName))}`);
    } else if (chosen.has(recovery)) {
      problem("DUPLICATE_RECOVERY_DEVICE", recoveryName, `the recovery volume ${recovery.deviceName} is mapped more than once: keep one pair for it`);
      continue;
    }
    if (isExclude(value)) {
      if (recovery) {
        chosen.set(recovery, null);
        excluded.add(recovery);
      }
      continue;
    }
    const local = findLocal(value, valueFormat, localDisks, problem);
    if (recovery) chosen.set(recovery, local ?? null);
    if (local === undefined) continue;
    if (local.refusal) {
      problem("NOT_A_TARGET", value, `${local.name} cannot receive a volume: ${local.refusal}`);
      continue;
    }
    const previous = users.get(local);
    if (previous !== undefined) {
      problem("LOCAL_DISK_USED_TWICE", value, `the local disk ${local.name} is given for both ${previous} and ${recovery?.deviceName ?? recoveryName}: each local disk receives one volume`);
      continue;
    }
    users.set(local, recovery?.deviceName ?? recoveryName);
    if (recovery !== undefined && fitsVolume(local.bytes, recovery.bytes) === "too-small") {
      problem("LOCAL_DISK_TOO_SMALL", value, tooSmall(local, recovery));
    }
  }

  for (const disk of recoveryDisks) {
    if (!chosen.has(disk)) {
      problem("UNMAPPED_RECOVERY_DEVICE", disk.deviceName, `the recovery volume ${disk.deviceName} is neither mapped nor excluded: add ${disk.deviceName}=<local disk> or ${disk.deviceName}=EXCLUDE`);
    }
  }
  if (recoveryDisks.length === 0) {
    problem("NO_RECOVERY_VOLUMES", "", "the Recovery Instance has no volumes to fail back");
  } else if (recoveryDisks.every((d) => excluded.has(d))) {
    problem("ALL_EXCLUDED", "EXCLUDE", "every recovery volume is excluded: map at least one to a local disk");
  }

  if (problems.length > 0) throw DeviceMappingError.fromProblems(problems);
  return recoveryDisks.map((d) => ({ recoveryDisk: d, localDisk: chosen.get(d) ?? null }));
}

/** The one local disk `value` names in `format`, or undefined after recording why not. */
function findLocal(
  value: string,
  format: ValueFormat,
  localDisks: readonly LocalDisk[],
  problem: (code: string, token: string, message: string) => void,
): LocalDisk | undefined {
  const disks = localDisks.filter((d) => namesDevice(value, d, format));
  if (disks.length === 1) return disks[0];
  if (disks.length > 1) {
    problem("AMBIGUOUS_LOCAL_DISK", value, `${quote(value)} names ${disks.length} local disks (${list(disks.map((d) => d.name))}) in ${format}: give a name that matches exactly one`);
    return undefined;
  }
  for (const disk of localDisks) {
    const part = (disk.partitions ?? []).find((p) => namesDevice(value, p, format));
    if (part) {
      problem("PARTITION_NOT_DISK", value, `${quote(value)} is the partition ${part.name} of the disk ${disk.name}; a volume goes onto a whole disk: give the disk ${disk.name} instead`);
      return undefined;
    }
  }
  const known = localDisks.filter((d) => !d.refusal).flatMap((d) => namesIn(d, format));
  problem("LOCAL_DISK_NOT_FOUND", value, `no local disk is named ${quote(value)} in the ${format} format; local disks: ${list(known)}`);
  return undefined;
}
