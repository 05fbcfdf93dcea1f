/*
 * The size rule (DESIGN.md step 8). A local disk receives a recovery volume when it is at least as
 * large, or when it is a fractional-GiB disk whose size rounded up to whole GiB is exactly the
 * recovery volume's size: an original 9.75 GiB disk comes back from EBS as a 10 GiB volume, and the
 * replication must then prove the tail beyond 9.75 GiB holds only zeros.
 */
import { DeviceMappingError } from "./errors.js";
import type { Fit } from "./types.js";

/** 2^30 bytes. */
export const GIB = 1024 ** 3;

function checkBytes(what: string, bytes: number): void {
  if (typeof bytes !== "number" || !Number.isSafeInteger(bytes) || bytes < 0) {
    throw new DeviceMappingError("INVALID_SIZE", String(bytes), `${what} size ${String(bytes)} is not a whole number of bytes >= 0`);
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

/** Bytes as a person reads them, with the exact figure: "10.00 GiB = 10737418240 bytes". */
export function describeBytes(bytes: number): string {
  return `${(bytes / GIB).toFixed(2)} GiB = ${bytes} bytes`;
}
