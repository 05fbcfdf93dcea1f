/*
 * The DRS world of the demo (and of the program's tests): one source server that failed over, its
 * Recovery Instance with its volumes, the failback replication configuration, and the credentials
 * the emulator accepts. Records are in the DRS API's own shapes (docs/emulator.md).
 */

export interface DemoVolume {
  deviceName: string;
  bytes: number;
}

export interface DemoWorld {
  accessKeyId: string;
  secretAccessKey: string;
  account: string;
  region: string;
  recoveryInstanceId: string;
  sourceServerId: string;
  hostname: string;
  volumes: DemoVolume[];
  /** The source server's own disks (for auto-mapping), same order as volumes. */
  sourceDisks?: DemoVolume[];
  macAddress: string;
  agentIp: string;
  throttleMbps: number;
  /** More instances, so the list has something to choose from. */
  others?: { recoveryInstanceId: string; sourceServerId: string; hostname: string; volumes: DemoVolume[]; macAddress: string }[];
}

function instanceRecord(world: Pick<DemoWorld, "account" | "region">, id: string, sourceServerId: string, volumes: DemoVolume[], ip: string) {
  return {
    recoveryInstanceID: id,
    arn: `arn:aws:drs:${world.region}:${world.account}:recovery-instance/${id}`,
    sourceServerID: sourceServerId,
    ec2InstanceID: id,
    ec2InstanceState: "RUNNING",
    isDrill: false,
    tags: {},
    failback: { state: "FAILBACK_NOT_STARTED" },
    recoveryInstanceProperties: {
      disks: volumes.map((v, i) => ({ internalDeviceName: v.deviceName, bytes: v.bytes, ebsVolumeID: `vol-0${String(i).padStart(16, "0")}` })),
      networkInterfaces: [{ macAddress: "0e:00:00:00:00:01", ips: [ip], isPrimary: true }],
      identificationHints: { awsInstanceID: id },
    },
  };
}

function sourceRecord(world: Pick<DemoWorld, "account" | "region">, id: string, hostname: string, mac: string, disks: DemoVolume[]) {
  return {
    sourceServerID: id,
    arn: `arn:aws:drs:${world.region}:${world.account}:source-server/${id}`,
    tags: {},
    sourceProperties: {
      identificationHints: { hostname, fqdn: `${hostname}.example.internal` },
      networkInterfaces: [{ macAddress: mac, ips: ["192.0.2.10"], isPrimary: true }],
      disks: disks.map((d) => ({ deviceName: d.deviceName, bytes: d.bytes })),
    },
  };
}

/** The emulator's state file for a world. */
export function emulatorState(world: DemoWorld): Record<string, unknown> {
  const others = world.others ?? [];
  return {
    credentials: [{ accessKeyId: world.accessKeyId, secretAccessKey: world.secretAccessKey, account: world.account }],
    sourceServers: [
      sourceRecord(world, world.sourceServerId, world.hostname, world.macAddress, world.sourceDisks ?? world.volumes),
      ...others.map((o) => sourceRecord(world, o.sourceServerId, o.hostname, o.macAddress, o.volumes)),
    ],
    recoveryInstances: [
      instanceRecord(world, world.recoveryInstanceId, world.sourceServerId, world.volumes, world.agentIp),
      ...others.map((o) => instanceRecord(world, o.recoveryInstanceId, o.sourceServerId, o.volumes, "192.0.2.99")),
    ],
    failbackReplicationConfigurations: {
      [world.recoveryInstanceId]: { recoveryInstanceID: world.recoveryInstanceId, name: `${world.hostname} failback`, bandwidthThrottling: world.throttleMbps, usePrivateIP: true },
      ...Object.fromEntries(
        others.map((o) => [o.recoveryInstanceId, { recoveryInstanceID: o.recoveryInstanceId, name: `${o.hostname} failback`, bandwidthThrottling: 0, usePrivateIP: true }]),
      ),
    },
  };
}
