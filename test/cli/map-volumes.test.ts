/*
 * The CLI's choice of mapping without --device-mapping: the automatic mapping sees every local
 * disk, refused ones included, as docs/device-mapping.md says, so a refused twin makes it ask
 * (or, with --no-prompt, refuse) instead of overwriting the other disk of that size.
 */
import { describe, expect, it } from "vitest";
import { createLog } from "../../src/cli/log.js";
import { mapVolumes } from "../../src/cli/steps/map-volumes.js";
import type { DiskInfo } from "../../src/devices/index.js";
import type { RecoveryInstanceView } from "../../src/drs/index.js";

const GiB = 2 ** 30;
const disk = (name: string, bytes: number, refusals: string[] = []): DiskInfo => ({
  name,
  kernelName: name.slice(5),
  kind: "disk",
  bytes,
  sectors: bytes / 512,
  logicalBlockSize: 512,
  readOnly: false,
  removable: false,
  rotational: false,
  model: null,
  serial: null,
  vendor: null,
  mountpoints: refusals.length > 0 ? ["/"] : [],
  refusals,
  refusal: refusals[0],
  offered: true,
  partitions: [],
  byPath: [],
  byId: [],
  byUuid: [],
});
const instance = (sourceDisks: { deviceName: string; bytes: number }[]): RecoveryInstanceView => ({
  id: "i-0123456789abcdef0",
  arn: "arn:aws:drs:us-east-1:111122223333:recovery-instance/i-0123456789abcdef0",
  sourceServerId: "s-0123456789abcdef0",
  hostname: "db-07",
  disks: [{ deviceName: "/dev/xvda", bytes: 10 * GiB }],
  sourceDisks,
  networkInterfaces: [],
  sourceNetworkInterfaces: [],
});
const log = createLog({ console: false, consoleWrite: () => undefined });

describe("mapping the volumes automatically", () => {
  it("does not overwrite the twin of a refused disk: with --no-prompt it asks for --device-mapping", async () => {
    // The documented row: sda 10 GiB (mounted), sdb 10 GiB, source sda 10 GiB -> null.
    const disks = [disk("/dev/sda", 10 * GiB, ["mounted at /"]), disk("/dev/sdb", 10 * GiB)];
    await expect(mapVolumes(instance([{ deviceName: "/dev/sda", bytes: 10 * GiB }]), disks, { valueFormat: "dev-name" }, null, log, () => undefined)).rejects.toMatchObject({
      code: "MAPPING_NEEDED",
    });
  });

  it("still maps a volume whose size only one disk has", async () => {
    const disks = [disk("/dev/sda", 20 * GiB, ["mounted at /"]), disk("/dev/sdb", 10 * GiB)];
    const mapped = await mapVolumes(instance([]), disks, { valueFormat: "dev-name" }, null, log, () => undefined);
    expect(mapped.map((m) => [m.recoveryDisk.deviceName, m.localDisk?.name])).toEqual([["/dev/xvda", "/dev/sdb"]]);
  });
});
