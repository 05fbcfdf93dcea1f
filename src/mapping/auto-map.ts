/*
 * autoMapDevices: the mapping the client proposes on its own, for the common case of failing back
 * to the original server. It returns a mapping only when exactly one answer is possible and null
 * otherwise; the person (or --device-mapping) decides every doubtful case. It never excludes a
 * volume and never proposes a disk that carries a `refusal`.
 *
 * Rules, in order (docs/device-mapping.md, "autoMapDevices"):
 * 1. Source hints: DRS lists the source server's disks in the same order as the Recovery
 *    Instance's volumes. When the lists have the same length, recovery volume i goes to the local
 *    disk with the source disk i's name AND exactly its size (a name alone proves nothing: every
 *    Linux server has a /dev/sda), provided it fits. All volumes must match this way.
 * 2. Otherwise, by size: recovery volume i goes to the one local disk whose size equals its own to
 *    the byte, when no other local disk (refused ones included) has that size and no other
 *    recovery volume claims the same disk.
 */
import { fitsVolume } from "./size-rule.js";
import type { LocalDisk, RecoveryDisk, ResolvedMapping } from "./types.js";

/** What DRS knows of the source server: its own disks (sourceProperties.disks), in DRS's order. */
export interface AutoMapHints {
  sourceDisks?: readonly { deviceName: string; bytes: number }[];
}

function bare(name: string): string {
  return name.startsWith("/dev/") ? name.slice(5) : name;
}

function validBytes(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

/** One local disk per entry of `picks`, all present, all different; else null. */
function distinct(recoveryDisks: readonly RecoveryDisk[], picks: (LocalDisk | undefined)[]): ResolvedMapping[] | null {
  const seen = new Set<LocalDisk>();
  for (const p of picks) {
    if (p === undefined || seen.has(p)) return null;
    seen.add(p);
  }
  return recoveryDisks.map((recoveryDisk, i) => ({ recoveryDisk, localDisk: picks[i] ?? null }));
}

function only<T>(items: T[]): T | undefined {
  return items.length === 1 ? items[0] : undefined;
}

function byHints(recoveryDisks: readonly RecoveryDisk[], localDisks: readonly LocalDisk[], sourceDisks: AutoMapHints["sourceDisks"]): ResolvedMapping[] | null {
  if (!Array.isArray(sourceDisks) || sourceDisks.length !== recoveryDisks.length) return null;
  const picks = recoveryDisks.map((recovery, i) => {
    const source = sourceDisks[i];
    if (typeof source?.deviceName !== "string" || !validBytes(source.bytes)) return undefined;
    const named = only(localDisks.filter((d) => d.name === source.deviceName || bare(d.name) === bare(source.deviceName)));
    if (named === undefined || named.refusal || named.bytes !== source.bytes) return undefined;
    return fitsVolume(named.bytes, recovery.bytes) === "too-small" ? undefined : named;
  });
  return distinct(recoveryDisks, picks);
}

function bySize(recoveryDisks: readonly RecoveryDisk[], localDisks: readonly LocalDisk[]): ResolvedMapping[] | null {
  const picks = recoveryDisks.map((recovery) => {
    const same = only(localDisks.filter((d) => d.bytes === recovery.bytes));
    return same === undefined || same.refusal ? undefined : same;
  });
  return distinct(recoveryDisks, picks);
}

/** The mapping when it is certain (original server by name and size, else unique exact sizes); null when a person must choose. */
export function autoMapDevices(
  recoveryDisks: readonly RecoveryDisk[],
  localDisks: readonly LocalDisk[],
  hints?: AutoMapHints,
): ResolvedMapping[] | null {
  if (!Array.isArray(recoveryDisks) || !Array.isArray(localDisks) || recoveryDisks.length === 0) return null;
  if (!recoveryDisks.every((d) => typeof d?.deviceName === "string" && validBytes(d.bytes))) return null;
  const locals = localDisks.filter((d) => typeof d?.name === "string" && validBytes(d.bytes));
  if (locals.length !== localDisks.length) return null;
  return byHints(recoveryDisks, locals, hints?.sourceDisks) ?? bySize(recoveryDisks, locals);
}
