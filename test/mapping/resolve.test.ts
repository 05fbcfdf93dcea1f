import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  DeviceMappingError,
  fitsVolume,
  GIB,
  type LocalDisk,
  type MappingEntry,
  parseDeviceMapping,
  type RecoveryDisk,
  resolveDeviceMapping,
  TOO_SMALL_CODES,
  type ValueFormat,
} from "../../src/mapping/index.js";

// A server with two SCSI disks and an NVMe disk; sdc is the boot USB stick the ISO runs from.
const sda: LocalDisk = {
  name: "/dev/sda",
  bytes: 10 * GIB,
  byPath: ["pci-0000:00:10.0-scsi-0:0:0:0"],
  byId: ["scsi-36000c29a1b2c3d4e5f60718293a4b5c6", "wwn-0x6000c29a1b2c3d4e5f60718293a4b5c6"],
  byUuid: [],
  partitions: [
    { name: "/dev/sda1", byPath: ["pci-0000:00:10.0-scsi-0:0:0:0-part1"], byId: ["scsi-36000c29a1b2c3d4e5f60718293a4b5c6-part1"], byUuid: ["0f3e2c1a-7b4d-4e8f-9a6b-1c2d3e4f5a6b"] },
  ],
};
const sdb: LocalDisk = {
  name: "/dev/sdb",
  bytes: 20 * GIB,
  byPath: ["pci-0000:00:10.0-scsi-0:0:1:0"],
  byId: ["scsi-36000c29ffeeddccbbaa99887766554433"],
  byUuid: ["5d41402a-bc4b-2a76-b971-9d911017c592"],
};
const nvme: LocalDisk = {
  name: "/dev/nvme0n1",
  bytes: 9.75 * GIB,
  byPath: ["pci-0000:00:1f.0-nvme-1"],
  byId: ["nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"],
  byUuid: [],
};
const usb: LocalDisk = { name: "/dev/sdc", bytes: 8 * GIB, byPath: ["pci-0000:00:14.0-usb-0:1:1.0-scsi-0:0:0:0"], byId: ["usb-Kingston_DT_1"], byUuid: [], refusal: "mounted at /run/live/medium" };
const localDisks = [sda, sdb, nvme, usb];

const xvda: RecoveryDisk = { deviceName: "/dev/xvda", bytes: 10 * GIB };
const xvdb: RecoveryDisk = { deviceName: "/dev/xvdb", bytes: 20 * GIB };
const xvdc: RecoveryDisk = { deviceName: "/dev/xvdc", bytes: 10 * GIB };
const recoveryDisks = [xvda, xvdb, xvdc];

function resolve(text: string, valueFormat: ValueFormat, disks: RecoveryDisk[] = recoveryDisks, locals: LocalDisk[] = localDisks) {
  return resolveDeviceMapping(parseDeviceMapping(text), { valueFormat, recoveryDisks: disks, localDisks: locals });
}

function problems(text: string, valueFormat: ValueFormat, disks?: RecoveryDisk[], locals?: LocalDisk[]): DeviceMappingError {
  try {
    resolve(text, valueFormat, disks, locals);
  } catch (error) {
    expect(error).toBeInstanceOf(DeviceMappingError);
    return error as DeviceMappingError;
  }
  throw new Error(`resolved without error: ${text}`);
}

const names = (r: ReturnType<typeof resolve>) => r.map((m) => [m.recoveryDisk.deviceName, m.localDisk?.name ?? null]);
const expected = [
  ["/dev/xvda", "/dev/sda"],
  ["/dev/xvdb", "/dev/sdb"],
  ["/dev/xvdc", null],
];

describe("resolveDeviceMapping: every value format", () => {
  test.each<[string, ValueFormat, string]>([
    ["dev-name, full names", "dev-name", "/dev/xvda=/dev/sda,/dev/xvdb=/dev/sdb,/dev/xvdc=EXCLUDE"],
    ["dev-name, bare names", "dev-name", "/dev/xvda=sda,/dev/xvdb=sdb,/dev/xvdc=exclude"],
    ["dev-name, bare recovery names", "dev-name", "xvda=/dev/sda,xvdb=/dev/sdb,xvdc=EXCLUDE"],
    ["by-path, bare (colons kept)", "by-path", "/dev/xvda=pci-0000:00:10.0-scsi-0:0:0:0,/dev/xvdb=pci-0000:00:10.0-scsi-0:0:1:0,/dev/xvdc=EXCLUDE"],
    ["by-path, with : as separator", "by-path", "/dev/xvda:pci-0000:00:10.0-scsi-0:0:0:0,/dev/xvdb:pci-0000:00:10.0-scsi-0:0:1:0,/dev/xvdc:EXCLUDE"],
    ["by-path, full paths", "by-path", "/dev/xvda=/dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:0:0,/dev/xvdb=/dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:1:0,/dev/xvdc=EXCLUDE"],
    ["by-id, any of a disk's ids", "by-id", "/dev/xvda=wwn-0x6000c29a1b2c3d4e5f60718293a4b5c6,/dev/xvdb=/dev/disk/by-id/scsi-36000c29ffeeddccbbaa99887766554433,/dev/xvdc=EXCLUDE"],
    ["by-uuid", "by-uuid", '{"/dev/xvdb":"5d41402a-bc4b-2a76-b971-9d911017c592","/dev/xvdc":"EXCLUDE","/dev/xvda":"EXCLUDE"}'],
    ["all-strict, names of every kind", "all-strict", "/dev/xvda=scsi-36000c29a1b2c3d4e5f60718293a4b5c6,/dev/xvdb=/dev/disk/by-uuid/5d41402a-bc4b-2a76-b971-9d911017c592,/dev/xvdc=EXCLUDE"],
    ["all-strict, dev names", "all-strict", "/dev/xvda=/dev/sda,/dev/xvdb=sdb,/dev/xvdc=EXCLUDE"],
    [
      "DRS list form",
      "dev-name",
      '[{"recoveryInstanceDeviceName":"/dev/xvdc","failbackClientDeviceName":"EXCLUDE"},{"recoveryInstanceDeviceName":"/dev/xvdb","failbackClientDeviceName":"/dev/sdb"},{"recoveryInstanceDeviceName":"/dev/xvda","failbackClientDeviceName":"/dev/sda"}]',
    ],
  ])("%s", (name, format, text) => {
    const result = resolve(text, format);
    if (format === "by-uuid") {
      expect(names(result)).toEqual([
        ["/dev/xvda", null],
        ["/dev/xvdb", "/dev/sdb"],
        ["/dev/xvdc", null],
      ]);
    } else expect(names(result)).toEqual(expected);
    // The very objects passed in come back, in the recovery disks' order.
    expect(result.map((m) => m.recoveryDisk)).toEqual(recoveryDisks);
    expect(result[1]?.recoveryDisk).toBe(xvdb);
    expect(result[1]?.localDisk).toBe(sdb);
  });

  test("a fractional-GiB disk receives the rounded-up volume", () => {
    const result = resolve("/dev/xvda=/dev/nvme0n1", "dev-name", [xvda]);
    expect(result[0]?.localDisk).toBe(nvme);
  });

  test("a disk-image file given by path is a disk like any other", () => {
    const image: LocalDisk = { name: "/var/tmp/target a.img", bytes: 10 * GIB, byPath: [], byId: [], byUuid: [] };
    expect(resolve("/dev/xvda=/var/tmp/target a.img", "dev-name", [xvda], [image])[0]?.localDisk).toBe(image);
  });

  test("each format reads only its own names: a by-id value is not a dev-name", () => {
    expect(problems("/dev/xvda=/dev/sda,/dev/xvdb=EXCLUDE,/dev/xvdc=EXCLUDE", "by-id").code).toBe("LOCAL_DISK_NOT_FOUND");
    expect(problems("/dev/xvda=scsi-36000c29a1b2c3d4e5f60718293a4b5c6,/dev/xvdb=EXCLUDE,/dev/xvdc=EXCLUDE", "by-path").code).toBe("LOCAL_DISK_NOT_FOUND");
    expect(problems("/dev/xvda=/dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:0:0,/dev/xvdb=EXCLUDE,/dev/xvdc=EXCLUDE", "by-id").code).toBe("LOCAL_DISK_NOT_FOUND");
  });
});

describe("resolveDeviceMapping: every problem, with its code", () => {
  test.each<[string, string, ValueFormat, string, string]>([
    ["recovery disk neither mapped nor excluded", "/dev/xvda=/dev/sda,/dev/xvdb=/dev/sdb", "dev-name", "UNMAPPED_RECOVERY_DEVICE", "/dev/xvdc"],
    ["recovery device the instance lacks", "/dev/xvda=/dev/sda,/dev/xvdb=/dev/sdb,/dev/xvdc=EXCLUDE,/dev/xvdz=EXCLUDE", "dev-name", "UNKNOWN_RECOVERY_DEVICE", "/dev/xvdz"],
    ["local value not found", "/dev/xvda=/dev/sdz,/dev/xvdb=/dev/sdb,/dev/xvdc=EXCLUDE", "dev-name", "LOCAL_DISK_NOT_FOUND", "/dev/sdz"],
    ["local value is a partition (dev-name)", "/dev/xvda=/dev/sda1,/dev/xvdb=/dev/sdb,/dev/xvdc=EXCLUDE", "dev-name", "PARTITION_NOT_DISK", "/dev/sda1"],
    ["local value is a partition (by-uuid)", "/dev/xvda=0f3e2c1a-7b4d-4e8f-9a6b-1c2d3e4f5a6b,/dev/xvdb=EXCLUDE,/dev/xvdc=EXCLUDE", "by-uuid", "PARTITION_NOT_DISK", "0f3e2c1a-7b4d-4e8f-9a6b-1c2d3e4f5a6b"],
    ["local value is a partition (all-strict)", "/dev/xvda=pci-0000:00:10.0-scsi-0:0:0:0-part1,/dev/xvdb=EXCLUDE,/dev/xvdc=EXCLUDE", "all-strict", "PARTITION_NOT_DISK", "pci-0000:00:10.0-scsi-0:0:0:0-part1"],
    ["local disk that must never be written", "/dev/xvda=/dev/sdc,/dev/xvdb=EXCLUDE,/dev/xvdc=EXCLUDE", "dev-name", "NOT_A_TARGET", "/dev/sdc"],
    ["the same local disk twice", "/dev/xvda=/dev/sda,/dev/xvdb=/dev/sdb,/dev/xvdc=sda", "dev-name", "LOCAL_DISK_USED_TWICE", "sda"],
    ["the same local disk twice under two names", "/dev/xvda=/dev/sda,/dev/xvdb=EXCLUDE,/dev/xvdc=wwn-0x6000c29a1b2c3d4e5f60718293a4b5c6", "all-strict", "LOCAL_DISK_USED_TWICE", "wwn-0x6000c29a1b2c3d4e5f60718293a4b5c6"],
    ["local disk too small", "/dev/xvda=EXCLUDE,/dev/xvdb=/dev/sda,/dev/xvdc=EXCLUDE", "dev-name", "LOCAL_DISK_TOO_SMALL", "/dev/sda"],
    ["every disk excluded", "/dev/xvda=EXCLUDE,/dev/xvdb=EXCLUDE,/dev/xvdc=exclude", "dev-name", "ALL_EXCLUDED", "EXCLUDE"],
    ["the same recovery volume under two names", "/dev/xvda=/dev/sda,xvda=EXCLUDE,/dev/xvdb=/dev/sdb,/dev/xvdc=EXCLUDE", "dev-name", "DUPLICATE_RECOVERY_DEVICE", "xvda"],
  ])("%s", (_name, text, format, code, token) => {
    const error = problems(text, format);
    expect(error.problems.map((p) => [p.code, p.token])).toEqual([[code, token]]);
    expect(error.code).toBe(code);
    expect(error.token).toBe(token);
    expect(error.message).not.toMatch(/[\r\n]/);
  });

  test("ambiguous in all-strict: a value that names two disks", () => {
    const twin: LocalDisk = { name: "/dev/sdd", bytes: 10 * GIB, byPath: [], byId: ["dm-name-sda"], byUuid: [] };
    const confusing: LocalDisk = { ...twin, name: "/dev/sde", byId: ["sda"] };
    const error = problems("/dev/xvda=sda", "all-strict", [xvda], [sda, confusing]);
    expect(error.code).toBe("AMBIGUOUS_LOCAL_DISK");
    expect(error.message).toContain("/dev/sda");
    expect(error.message).toContain("/dev/sde");
    // The same value in dev-name names exactly one disk.
    expect(resolve("/dev/xvda=sda", "dev-name", [xvda], [sda, confusing])[0]?.localDisk).toBe(sda);
  });

  test("too small names both sizes, exactly and in GiB", () => {
    const { message } = problems("/dev/xvdb=/dev/sda,/dev/xvda=EXCLUDE,/dev/xvdc=EXCLUDE", "dev-name");
    expect(message).toContain(`${10 * GIB} bytes`);
    expect(message).toContain(`${20 * GIB} bytes`);
    expect(message).toContain("10.00 GiB");
    expect(message).toContain("20.00 GiB");
  });

  test("9 GiB <- 10 GiB is too small; 10 GiB <- 10 GiB + 1 byte is too small", () => {
    const nine: LocalDisk = { name: "/dev/sdx", bytes: 9 * GIB, byPath: [], byId: [], byUuid: [] };
    expect(problems("/dev/xvda=/dev/sdx", "dev-name", [xvda], [nine]).code).toBe("LOCAL_DISK_TOO_SMALL");
    expect(problems("/dev/xvda=/dev/sda", "dev-name", [{ deviceName: "/dev/xvda", bytes: 10 * GIB + 1 }], [sda]).code).toBe("LOCAL_DISK_TOO_SMALL");
  });

  test("the refusal reason and the partition's disk are in the message", () => {
    expect(problems("/dev/xvda=/dev/sdc,/dev/xvdb=EXCLUDE,/dev/xvdc=EXCLUDE", "dev-name").message).toContain("mounted at /run/live/medium");
    expect(problems("/dev/xvda=/dev/sda1,/dev/xvdb=EXCLUDE,/dev/xvdc=EXCLUDE", "dev-name").message).toMatch(/\/dev\/sda1.*\/dev\/sda\b/);
  });

  test("not found lists what exists in that format, leaving out disks that are no target", () => {
    const { message } = problems("/dev/xvda=nope,/dev/xvdb=EXCLUDE,/dev/xvdc=EXCLUDE", "by-path");
    expect(message).toContain("pci-0000:00:10.0-scsi-0:0:0:0");
    expect(message).not.toContain("usb");
  });

  test("every problem at once, in one error, codes kept apart", () => {
    const error = problems("/dev/xvda=/dev/sdz,/dev/xvdb=/dev/sda,/dev/xvdz=/dev/sdb,/dev/xvdy=/dev/sdb", "dev-name");
    expect(error.code).toBe("MULTIPLE_PROBLEMS");
    expect(error.problems.map((p) => p.code)).toEqual([
      "LOCAL_DISK_NOT_FOUND",
      "LOCAL_DISK_TOO_SMALL",
      "UNKNOWN_RECOVERY_DEVICE",
      "UNKNOWN_RECOVERY_DEVICE",
      "LOCAL_DISK_USED_TWICE",
      "UNMAPPED_RECOVERY_DEVICE",
    ]);
    for (const p of error.problems) expect(error.message).toContain(p.message);
  });

  test("several problems of one kind keep that code", () => {
    const tiny: LocalDisk = { name: "/dev/sdt", bytes: GIB, byPath: [], byId: [], byUuid: [] };
    const tiny2: LocalDisk = { ...tiny, name: "/dev/sdu" };
    const error = problems("/dev/xvda=/dev/sdt,/dev/xvdb=/dev/sdu", "dev-name", [xvda, xvdb], [tiny, tiny2]);
    expect(error.code).toBe("LOCAL_DISK_TOO_SMALL");
    expect(error.problems).toHaveLength(2);
    expect(error.problems.every((p) => TOO_SMALL_CODES.includes(p.code))).toBe(true);
  });

  test("bad arguments are coded errors, not TypeErrors", () => {
    const call = (entries: unknown, options: unknown) => () => resolveDeviceMapping(entries as MappingEntry[], options as Parameters<typeof resolveDeviceMapping>[1]);
    expect(call([], { valueFormat: "by-label", recoveryDisks, localDisks })).toThrow(expect.objectContaining({ code: "INVALID_VALUE_FORMAT" }));
    expect(call(null, { valueFormat: "dev-name", recoveryDisks, localDisks })).toThrow(expect.objectContaining({ code: "WRONG_SHAPE" }));
    expect(call([], undefined)).toThrow(expect.objectContaining({ code: "INVALID_VALUE_FORMAT" }));
    expect(call([{ recoveryInstanceDeviceName: "/dev/xvda" }], { valueFormat: "dev-name", recoveryDisks: [xvda], localDisks })).toThrow(
      expect.objectContaining({ problems: expect.arrayContaining([expect.objectContaining({ code: "NON_STRING_VALUE" })]) }),
    );
    expect(call([null], { valueFormat: "dev-name", recoveryDisks: [xvda], localDisks })).toThrow(DeviceMappingError);
    expect(call([{ recoveryInstanceDeviceName: "/dev/xvda", failbackClientDeviceName: " " }], { valueFormat: "dev-name", recoveryDisks: [xvda], localDisks })).toThrow(
      expect.objectContaining({ code: "EMPTY_NAME" }),
    );
    expect(call([], { valueFormat: "dev-name", recoveryDisks: [], localDisks })).toThrow(expect.objectContaining({ code: "NO_RECOVERY_VOLUMES" }));
  });
});

describe("resolveDeviceMapping on random mappings and disks", () => {
  const devName = fc.constantFrom("/dev/sda", "/dev/sdb", "sdb", "/dev/sdc", "/dev/sda1", "EXCLUDE", "exclude", "pci-0", "/dev/disk/by-path/pci-0", "id-1", "uuid-1", "/dev/xvda");
  const local = fc.record({
    name: fc.constantFrom("/dev/sda", "/dev/sdb", "/dev/sdc"),
    bytes: fc.constantFrom(9 * GIB, 9.75 * GIB, 10 * GIB, 20 * GIB, 20 * GIB, 20 * GIB),
    byPath: fc.subarray(["pci-0", "pci-1"]),
    byId: fc.subarray(["id-1", "id-2", "sdb"]),
    byUuid: fc.subarray(["uuid-1"]),
    partitions: fc.constantFrom(undefined, [{ name: "/dev/sda1", byPath: ["pci-0-part1"], byId: [], byUuid: ["uuid-1"] }]),
    refusal: fc.constantFrom(undefined, undefined, undefined, "mounted at /"),
  }) as fc.Arbitrary<LocalDisk>;
  const recovery = fc.record({ deviceName: fc.constantFrom("/dev/xvda", "/dev/xvdb", "/dev/xvdc"), bytes: fc.constantFrom(10 * GIB, 20 * GIB, 10 * GIB + 1) });
  // Mostly one entry per recovery disk (so some mappings succeed), sometimes an extra or a missing one.
  const scenario = fc
    .tuple(fc.uniqueArray(recovery, { selector: (d) => d.deviceName, minLength: 1, maxLength: 3 }), fc.uniqueArray(local, { selector: (d) => d.name, maxLength: 3 }))
    .chain(([disks, locals]) => {
      const value = locals.length > 0 ? fc.oneof({ weight: 1, arbitrary: devName }, { weight: 4, arbitrary: fc.constantFrom(...locals.map((d) => d.name)) }) : devName;
      const own = disks.map((d) => fc.record({ recoveryInstanceDeviceName: fc.constantFrom(d.deviceName, d.deviceName.slice(5)), failbackClientDeviceName: value }));
      const stray = fc.record({ recoveryInstanceDeviceName: fc.constantFrom("/dev/xvda", "/dev/xvdz"), failbackClientDeviceName: value });
      const extra = fc.oneof({ weight: 4, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.tuple(stray) });
      const dropOne = fc.constantFrom(false, false, false, false, true);
      return fc.tuple(fc.tuple(...own), extra, dropOne, fc.constant(disks), fc.constant(locals)).map(
        ([mine, more, dropOne, d, l]) => [[...(dropOne ? mine.slice(1) : mine), ...more], d, l] as [MappingEntry[], RecoveryDisk[], LocalDisk[]],
      );
    });

  test("returns a sound mapping or throws DeviceMappingError", () => {
    let resolved = 0;
    fc.assert(
      fc.property(
        scenario,
        fc.constantFrom<ValueFormat>("dev-name", "by-path", "by-id", "by-uuid", "all-strict"),
        ([es, disks, locals], format) => {
          let result;
          try {
            result = resolveDeviceMapping(es, { valueFormat: format, recoveryDisks: disks, localDisks: locals });
          } catch (error) {
            expect(error).toBeInstanceOf(DeviceMappingError);
            expect((error as DeviceMappingError).problems.length).toBeGreaterThan(0);
            return;
          }
          resolved++;
          expect(result.map((m) => m.recoveryDisk)).toEqual(disks);
          const used = result.flatMap((m) => (m.localDisk ? [m.localDisk] : []));
          expect(new Set(used).size).toBe(used.length);
          expect(used.length).toBeGreaterThan(0);
          for (const m of result) {
            if (!m.localDisk) continue;
            expect(locals).toContain(m.localDisk);
            expect(m.localDisk.refusal).toBeUndefined();
            expect(fitsVolume(m.localDisk.bytes, m.recoveryDisk.bytes)).not.toBe("too-small");
          }
        },
      ),
      { numRuns: 3000 },
    );
    // Some scenarios must succeed (about 100 of 3000 do), or the soundness checks above prove nothing.
    expect(resolved).toBeGreaterThan(30);
  });
});
