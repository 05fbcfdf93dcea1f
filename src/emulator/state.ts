/*
 * The emulator's state file: credentials, source servers, Recovery Instances and failback
 * replication configurations, in the DRS API's own field names (docs/emulator.md). Checked once at
 * start: a wrong type is refused with the JSON path that holds it; unknown fields are kept.
 */
import type { StoredCredential } from "./sigv4.js";

export interface Tagged {
  arn?: string;
  tags?: Record<string, string>;
  [field: string]: unknown;
}

export interface RecoveryInstanceRecord extends Tagged {
  recoveryInstanceID: string;
  sourceServerID?: string;
  failback?: { state?: string; [field: string]: unknown };
}

export interface SourceServerRecord extends Tagged {
  sourceServerID: string;
}

export interface EmulatorState {
  region: string;
  credentials: StoredCredential[];
  sourceServers: SourceServerRecord[];
  recoveryInstances: RecoveryInstanceRecord[];
  failbackReplicationConfigurations: Record<string, Record<string, unknown>>;
  jobs: Record<string, unknown>[];
}

export class StateError extends Error {
  readonly code = "BAD_STATE";
  constructor(message: string) {
    super(message);
    this.name = "StateError";
  }
}

type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> => typeof v === "object" && v !== null && !Array.isArray(v);

function need(cond: boolean, path: string, what: string): void {
  if (!cond) throw new StateError(`state file: ${path} must be ${what}`);
}

function strings(value: Json, path: string, fields: string[], optional: string[] = []): void {
  need(isObject(value), path, "an object");
  const v = value as Record<string, Json>;
  for (const f of fields) need(typeof v[f] === "string" && v[f] !== "", `${path}.${f}`, "a non-empty string");
  for (const f of optional) need(v[f] === undefined || typeof v[f] === "string", `${path}.${f}`, "a string");
}

function tags(value: Json, path: string): void {
  if (value === undefined) return;
  need(isObject(value) && Object.values(value).every((t) => typeof t === "string"), path, "an object of string values");
}

/** Checks a parsed state file; returns it typed, with defaults for what may be left out. */
export function parseState(json: Json, region = "us-east-1"): EmulatorState {
  need(isObject(json), "the top level", "an object");
  const s = json as Record<string, Json>;
  need(Array.isArray(s.credentials) && s.credentials.length > 0, "credentials", "a non-empty list");
  (s.credentials as Json[]).forEach((c, i) => {
    strings(c, `credentials[${i}]`, ["accessKeyId", "secretAccessKey", "account"], ["sessionToken", "expiresAt"]);
    const actions = (c as Record<string, Json>).allowedActions;
    need(actions === undefined || (Array.isArray(actions) && actions.every((a) => typeof a === "string")), `credentials[${i}].allowedActions`, "a list of strings");
  });
  for (const key of ["sourceServers", "recoveryInstances"] as const) need(s[key] === undefined || Array.isArray(s[key]), key, "a list");
  ((s.sourceServers ?? []) as Json[]).forEach((x, i) => {
    strings(x, `sourceServers[${i}]`, ["sourceServerID"], ["arn"]);
    tags((x as Record<string, Json>).tags, `sourceServers[${i}].tags`);
  });
  ((s.recoveryInstances ?? []) as Json[]).forEach((x, i) => {
    strings(x, `recoveryInstances[${i}]`, ["recoveryInstanceID"], ["arn", "sourceServerID"]);
    tags((x as Record<string, Json>).tags, `recoveryInstances[${i}].tags`);
    const disks = ((x as Record<string, Json>).recoveryInstanceProperties as Record<string, Json> | undefined)?.disks;
    need(disks === undefined || (Array.isArray(disks) && disks.every((d) => isObject(d) && typeof d.bytes === "number" && typeof d.internalDeviceName === "string")), `recoveryInstances[${i}].recoveryInstanceProperties.disks`, "a list of { internalDeviceName: string, bytes: number }");
  });
  const configs = s.failbackReplicationConfigurations ?? {};
  need(isObject(configs), "failbackReplicationConfigurations", "an object keyed by recovery instance id");
  for (const [id, c] of Object.entries(configs as Record<string, Json>)) {
    need(isObject(c), `failbackReplicationConfigurations.${id}`, "an object");
    const b = (c as Record<string, Json>).bandwidthThrottling;
    need(b === undefined || (typeof b === "number" && b >= 0), `failbackReplicationConfigurations.${id}.bandwidthThrottling`, "a number of Mbps >= 0");
  }
  return {
    ...(s as object),
    region: typeof s.region === "string" ? s.region : region,
    credentials: s.credentials as StoredCredential[],
    sourceServers: (s.sourceServers ?? []) as SourceServerRecord[],
    recoveryInstances: (s.recoveryInstances ?? []) as RecoveryInstanceRecord[],
    failbackReplicationConfigurations: configs as Record<string, Record<string, unknown>>,
    jobs: (Array.isArray(s.jobs) ? s.jobs : []) as Record<string, unknown>[],
  };
}
