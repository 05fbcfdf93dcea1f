/*
 * The Recovery Instances of the account and region, every page, each joined with its source
 * server, in the shape the client's steps use.
 */
import {
  DescribeRecoveryInstancesCommand,
  DescribeSourceServersCommand,
  type NetworkInterface,
  type RecoveryInstance,
  type SourceServer,
} from "@aws-sdk/client-drs";
import { requestOptions, type DrsClients } from "./clients.js";
import { translateAwsError } from "./errors.js";

export interface Interface {
  macAddress?: string;
  ips: string[];
  isPrimary?: boolean;
}

export interface RecoveryInstanceView {
  id: string;
  arn: string;
  sourceServerId: string;
  hostname: string;
  fqdn?: string;
  vmWareUuid?: string;
  disks: { deviceName: string; bytes: number }[];
  sourceDisks: { deviceName: string; bytes: number }[];
  failbackState?: string;
  networkInterfaces: Interface[];
  sourceNetworkInterfaces: Interface[];
  privateIp?: string;
  publicIp?: string;
}

const interfaces = (list: NetworkInterface[] | undefined): Interface[] =>
  (list ?? []).map((n) => ({ macAddress: n.macAddress?.toLowerCase(), ips: n.ips ?? [], isPrimary: n.isPrimary }));

const PRIVATE = /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|127\.|fd|fc)/i;

export function toView(instance: RecoveryInstance, source: SourceServer | undefined): RecoveryInstanceView {
  const hints = source?.sourceProperties?.identificationHints;
  const nics = interfaces(instance.recoveryInstanceProperties?.networkInterfaces);
  const ips = [...nics.filter((n) => n.isPrimary), ...nics.filter((n) => !n.isPrimary)].flatMap((n) => n.ips);
  return {
    id: instance.recoveryInstanceID ?? "",
    arn: instance.arn ?? "",
    sourceServerId: instance.sourceServerID ?? "",
    hostname: hints?.hostname ?? instance.recoveryInstanceProperties?.identificationHints?.hostname ?? "",
    fqdn: hints?.fqdn,
    vmWareUuid: hints?.vmWareUuid,
    disks: (instance.recoveryInstanceProperties?.disks ?? []).map((d) => ({ deviceName: d.internalDeviceName ?? "", bytes: d.bytes ?? 0 })),
    sourceDisks: (source?.sourceProperties?.disks ?? []).map((d) => ({ deviceName: d.deviceName ?? "", bytes: d.bytes ?? 0 })),
    failbackState: instance.failback?.state,
    networkInterfaces: nics,
    sourceNetworkInterfaces: interfaces(source?.sourceProperties?.networkInterfaces),
    privateIp: ips.find((ip) => PRIVATE.test(ip)),
    publicIp: ips.find((ip) => !PRIVATE.test(ip)),
  };
}

async function allRecoveryInstances(clients: DrsClients, ids?: string[]): Promise<RecoveryInstance[]> {
  const out: RecoveryInstance[] = [];
  let nextToken: string | undefined;
  for (let page = 0; page < 1000; page += 1) {
    const res = await clients.drs.send(new DescribeRecoveryInstancesCommand({ filters: ids ? { recoveryInstanceIDs: ids } : {}, maxResults: 200, nextToken }), requestOptions(clients));
    out.push(...(res.items ?? []));
    nextToken = res.nextToken;
    if (!nextToken) break;
  }
  return out;
}

async function sourceServers(clients: DrsClients, ids: string[]): Promise<Map<string, SourceServer>> {
  const map = new Map<string, SourceServer>();
  if (ids.length === 0) return map;
  let nextToken: string | undefined;
  for (let page = 0; page < 1000; page += 1) {
    const res = await clients.drs.send(new DescribeSourceServersCommand({ filters: { sourceServerIDs: ids }, maxResults: 200, nextToken }), requestOptions(clients));
    for (const s of res.items ?? []) if (s.sourceServerID) map.set(s.sourceServerID, s);
    nextToken = res.nextToken;
    if (!nextToken) break;
  }
  return map;
}

/** Every Recovery Instance, with its source server's facts. */
export async function listRecoveryInstances(clients: DrsClients, ids?: string[]): Promise<RecoveryInstanceView[]> {
  try {
    const instances = await allRecoveryInstances(clients, ids);
    const sources = await sourceServers(clients, [...new Set(instances.map((i) => i.sourceServerID ?? "").filter(Boolean))]);
    return instances.map((i) => toView(i, sources.get(i.sourceServerID ?? "")));
  } catch (error) {
    throw translateAwsError(error, "drs:DescribeRecoveryInstances", clients.drsEndpoint);
  }
}
