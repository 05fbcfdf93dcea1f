/*
 * Which Recovery Instances could be failed back onto this server, and which one is this server's
 * own. Pure: data in, data out.
 */
import type { LocalDisk } from "../mapping/types.js";
import type { RecoveryInstanceView } from "./instances.js";

type FitRule = (localBytes: number, recoveryBytes: number) => "fits" | "fractional" | "too-small";

/** True when each recovery disk can get its own local disk that the size rule accepts (bipartite matching). */
export function canPlace(recovery: { bytes: number }[], locals: LocalDisk[], fits: FitRule): boolean {
  const usable = locals.filter((l) => !l.refusal);
  const owner = new Array<number>(usable.length).fill(-1);
  const tryPlace = (r: number, seen: boolean[]): boolean => {
    for (let l = 0; l < usable.length; l += 1) {
      if (seen[l] || fits(usable[l]!.bytes, recovery[r]!.bytes) === "too-small") continue;
      seen[l] = true;
      if (owner[l] === -1 || tryPlace(owner[l]!, seen)) {
        owner[l] = r;
        return true;
      }
    }
    return false;
  };
  return recovery.every((_, r) => tryPlace(r, new Array<boolean>(usable.length).fill(false)));
}

/** The instances whose volumes fit this server's disks (what the DRS client lists). */
export function fittingInstances(instances: RecoveryInstanceView[], localDisks: LocalDisk[], fits: FitRule): RecoveryInstanceView[] {
  return instances.filter((i) => i.disks.length > 0 && canPlace(i.disks, localDisks, fits));
}

export interface Identity {
  macs: string[];
  smbiosUuid: string | null;
  hostname: string;
  fqdn: string;
}

function uuidForms(uuid: string): string[] {
  const swap = (hex: string) => hex.match(/../g)?.reverse().join("") ?? hex;
  const [a = "", b = "", c = "", ...rest] = uuid.toLowerCase().split("-");
  return [uuid.toLowerCase(), [swap(a), swap(b), swap(c), ...rest].join("-")];
}

const shortName = (name: string) => name.toLowerCase().split(".")[0] ?? "";

/** Why `instance` was replicated from this machine, or null. MAC and UUID are strong; hostname weaker. */
function matchReason(instance: RecoveryInstanceView, me: Identity): string | null {
  const macs = new Set(me.macs.map((m) => m.toLowerCase()));
  const mac = instance.sourceNetworkInterfaces.find((n) => n.macAddress && macs.has(n.macAddress));
  if (mac) return `MAC ${mac.macAddress} matches`;
  if (me.smbiosUuid && instance.vmWareUuid && uuidForms(me.smbiosUuid).includes(instance.vmWareUuid.toLowerCase())) return `SMBIOS UUID ${me.smbiosUuid} matches`;
  if (instance.fqdn && me.fqdn && instance.fqdn.toLowerCase() === me.fqdn.toLowerCase()) return `FQDN ${me.fqdn} matches`;
  if (instance.hostname && me.hostname && shortName(instance.hostname) === shortName(me.hostname)) return `hostname ${me.hostname} matches`;
  return null;
}

/** This server's own instance when exactly one matches; else every match as a candidate. */
export function findOwnInstance(instances: RecoveryInstanceView[], me: Identity): { chosen?: RecoveryInstanceView; candidates: RecoveryInstanceView[]; reason: string } {
  const matches = instances.flatMap((i) => {
    const reason = matchReason(i, me);
    return reason ? [{ instance: i, reason }] : [];
  });
  if (matches.length === 1) return { chosen: matches[0]!.instance, candidates: [matches[0]!.instance], reason: matches[0]!.reason };
  return { candidates: matches.map((m) => m.instance), reason: matches.length === 0 ? "no instance matches this server" : `${matches.length} instances match this server` };
}
