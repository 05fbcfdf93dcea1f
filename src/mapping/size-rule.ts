/*
 * The size rule (DESIGN.md step 8). A local disk receives a recovery volume when it is at least as
 * large, or when it is a fractional-GiB disk whose size rounded up to whole GiB is exactly the
 * recovery volume's size: an original 9.75 GiB disk comes back from EBS as a 10 GiB volume, and the
 * replication must then prove the tail beyond 9.75 GiB holds only zeros.
 */
import { DeviceMappingError, type MappingProblem, show } from "./errors.js";
import type { Fit, LocalDisk, RecoveryDisk, ResolvedMapping } from "./types.js";

/** 2^30 bytes. */
export const GIB = 1024 ** 3;

function checkBytes(what: string, bytes: number): void {
  if (typeof bytes !== "number" || !Number.isSafeInteger(bytes) || bytes < 0) {
    throw new DeviceMappingError("INVALID_SIZE", show(bytes), `${what} size ${show(bytes)} is not a whole number of bytes >= 0`);
  }
}

/** Whether a local disk of `localBytes` can receive a recovery volume of `recoveryBytes`. */
export function fitsVolume(localBytes: number, recoveryBytes: number): Fit {
  checkBytes("local disk", localBytes);
  checkBytes("recovery volume", recoveryBytes);
  if (localBytes >= recoveryBytes) return "fits";
  if (localBytes % GIB !== 0 && Math.ceil(localBytes / GIB) * GIB === recoveryBytes) return "fractional";
  return "too-small";
}

/**
 * Bytes as a person reads them, with the exact figure: "10.00 GiB = 10737418240 bytes", or in MiB
 * below a GiB, where "0.00 GiB" would hide the size ("8.00 MiB = 8388608 bytes").
 */
export function describeBytes(bytes: number): string {
  const readable = bytes >= GIB ? `${(bytes / GIB).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(2)} MiB`;
  return `${readable} = ${bytes} bytes`;
}

/** The one-line message for a local disk too small for its recovery volume, with both sizes. */
export function tooSmall(local: LocalDisk, recovery: RecoveryDisk): string {
  return `the local disk ${local.name} (${describeBytes(local.bytes)}) is smaller than the recovery volume ${recovery.deviceName} (${describeBytes(recovery.bytes)}): choose a disk at least that large`;
}

/** A mapped volume with the size rule's verdict; "fractional" obliges the replication to prove the tail is zeros. */
export interface VolumeFit {
  recoveryDisk: RecoveryDisk;
  localDisk: LocalDisk;
  fit: Exclude<Fit, "too-small">;
}

/** The size rule over a whole mapping: the verdict per mapped volume (excluded ones left out); throws LOCAL_DISK_TOO_SMALL naming every disk too small. */
export function checkVolumeSizes(mappings: readonly ResolvedMapping[]): VolumeFit[] {
  const fits: VolumeFit[] = [];
  const problems: MappingProblem[] = [];
  for (const { recoveryDisk, localDisk } of mappings) {
    if (localDisk === null) continue;
    const fit = fitsVolume(localDisk.bytes, recoveryDisk.bytes);
    if (fit === "too-small") {
      problems.push({
        code: "LOCAL_DISK_TOO_SMALL",
        token: localDisk.name,
        message: tooSmall(localDisk, recoveryDisk),
      });
    } else fits.push({ recoveryDisk, localDisk, fit });
  }
  if (problems.length > 0) throw DeviceMappingError.fromProblems(problems);
  return fits;
}
