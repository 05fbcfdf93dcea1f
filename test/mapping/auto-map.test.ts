import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { type AutoMapHints, autoMapDevices, fitsVolume, GIB, type LocalDisk, type RecoveryDisk } from "../../src/mapping/index.js";

const disk = (name: string, gib: number, extra: Partial<LocalDisk> = {}): LocalDisk => ({ name, bytes: gib * GIB, byPath: [], byId: [], byUuid: [], ...extra });
const vol = (deviceName: string, gib: number): RecoveryDisk => ({ deviceName, bytes: gib * GIB });
const src = (deviceName: string, gib: number) => ({ deviceName, bytes: gib * GIB });

type Case = [string, RecoveryDisk[], LocalDisk[], AutoMapHints | undefined, (string | null)[] | null];

const sda10 = disk("/dev/sda", 10);
const sdb20 = disk("/dev/sdb", 20);

describe("autoMapDevices", () => {
  test.each<Case>([
    // Without hints: unique exact sizes only.
    ["unique exact sizes", [vol("/dev/xvda", 10), vol("/dev/xvdb", 20)], [sdb20, sda10], undefined, ["/dev/sda", "/dev/sdb"]],
    ["two local disks of the same size: ambiguous", [vol("/dev/xvda", 10)], [sda10, disk("/dev/sdc", 10)], undefined, null],
    ["two recovery volumes of the same size: ambiguous", [vol("/dev/xvda", 10), vol("/dev/xvdb", 10)], [sda10, disk("/dev/sdc", 10)], undefined, null],
    ["a volume without a same-size disk", [vol("/dev/xvda", 10), vol("/dev/xvdb", 20)], [sda10, disk("/dev/sdb", 30)], undefined, null],
    ["a larger disk is not proof", [vol("/dev/xvda", 10)], [disk("/dev/sdb", 11)], undefined, null],
    ["one byte off is not the same size", [{ deviceName: "/dev/xvda", bytes: 10 * GIB + 1 }], [sda10], undefined, null],
    ["never onto a disk with a refusal", [vol("/dev/xvda", 10)], [disk("/dev/sda", 10, { refusal: "mounted at /" })], undefined, null],
    ["a refused twin still makes the size ambiguous", [vol("/dev/xvda", 10)], [sda10, disk("/dev/sdc", 10, { refusal: "mounted at /" })], undefined, null],
    ["a refused disk of another size is ignored", [vol("/dev/xvda", 10)], [sda10, disk("/dev/sdc", 8, { refusal: "boot medium" })], undefined, ["/dev/sda"]],
    ["no recovery volumes", [], [sda10], undefined, null],
    ["no local disks", [vol("/dev/xvda", 10)], [], undefined, null],
    // With the source server's disks: name and size together.
    [
      "source names and sizes: the original server",
      [vol("/dev/xvda", 10), vol("/dev/xvdb", 10)],
      [disk("/dev/sdb", 10), disk("/dev/sda", 10)],
      { sourceDisks: [src("/dev/sda", 10), src("/dev/sdb", 10)] },
      ["/dev/sda", "/dev/sdb"],
    ],
    [
      "source names settle what sizes alone cannot",
      [vol("/dev/xvda", 10), vol("/dev/xvdb", 10)],
      [disk("/dev/sda", 10), disk("/dev/sdb", 10)],
      { sourceDisks: [src("/dev/sdb", 10), src("/dev/sda", 10)] },
      ["/dev/sdb", "/dev/sda"],
    ],
    [
      "a fractional-GiB original disk by source name and size",
      [vol("/dev/xvda", 10)],
      [disk("/dev/nvme0n1", 9.75), disk("/dev/sdb", 10)],
      { sourceDisks: [src("/dev/nvme0n1", 9.75)] },
      ["/dev/nvme0n1"],
    ],
    [
      "source names without /dev/ still match",
      [vol("/dev/xvda", 10)],
      [sda10, disk("/dev/sdc", 10)],
      { sourceDisks: [src("sda", 10)] },
      ["/dev/sda"],
    ],
    [
      "same name, other size: not the original server; unique size decides",
      [vol("/dev/xvda", 10)],
      [disk("/dev/sda", 50), disk("/dev/sdb", 10)],
      { sourceDisks: [src("/dev/sda", 10)] },
      ["/dev/sdb"],
    ],
    [
      "same name, other size, and sizes ambiguous: null",
      [vol("/dev/xvda", 10)],
      [disk("/dev/sda", 50), disk("/dev/sdb", 10), disk("/dev/sdc", 10)],
      { sourceDisks: [src("/dev/sda", 10)] },
      null,
    ],
    [
      "the named original disk is refused: never onto it, and its twin is no sure answer",
      [vol("/dev/xvda", 10)],
      [disk("/dev/sda", 10, { refusal: "mounted at /" }), disk("/dev/sdb", 10)],
      { sourceDisks: [src("/dev/sda", 10)] },
      null,
    ],
    [
      "source list of another length is not used; sizes decide",
      [vol("/dev/xvda", 10), vol("/dev/xvdb", 20)],
      [sda10, sdb20],
      { sourceDisks: [src("/dev/sdb", 10)] },
      ["/dev/sda", "/dev/sdb"],
    ],
    [
      "source disks naming the same local disk twice: sizes cannot settle it either",
      [vol("/dev/xvda", 10), vol("/dev/xvdb", 10)],
      [sda10, disk("/dev/sdb", 10)],
      { sourceDisks: [src("/dev/sda", 10), src("/dev/sda", 10)] },
      null,
    ],
    ["empty hints are no hints", [vol("/dev/xvda", 10)], [sda10], { sourceDisks: [] }, ["/dev/sda"]],
  ])("%s", (_name, recovery, locals, hints, expected) => {
    const result = autoMapDevices(recovery, locals, hints);
    if (expected === null) expect(result).toBeNull();
    else {
      expect(result?.map((m) => m.localDisk?.name ?? null)).toEqual(expected);
      expect(result?.map((m) => m.recoveryDisk)).toEqual(recovery);
    }
  });

  test("malformed input is null, never a TypeError", () => {
    const bad = [
      () => autoMapDevices(null as unknown as RecoveryDisk[], []),
      () => autoMapDevices([vol("/dev/xvda", 10)], [null as unknown as LocalDisk]),
      () => autoMapDevices([{ deviceName: "/dev/xvda", bytes: Number.NaN }], [sda10]),
      () => autoMapDevices([vol("/dev/xvda", 10)], [sda10], { sourceDisks: [null as unknown as { deviceName: string; bytes: number }] }),
    ];
    expect(bad[0]?.()).toBeNull();
    expect(bad[1]?.()).toBeNull();
    expect(bad[2]?.()).toBeNull();
    // A broken hint is no hint: the unique size still decides.
    expect(bad[3]?.()?.[0]?.localDisk).toBe(sda10);
  });

  test("whatever it proposes is sound: every volume, distinct disks, no refused disk, all fit", () => {
    const local = fc.record({
      name: fc.constantFrom("/dev/sda", "/dev/sdb", "/dev/sdc", "/dev/sdd"),
      bytes: fc.constantFrom(9.75 * GIB, 10 * GIB, 20 * GIB, 30 * GIB),
      byPath: fc.constant([]),
      byId: fc.constant([]),
      byUuid: fc.constant([]),
      refusal: fc.constantFrom(undefined, undefined, "mounted"),
    }) as fc.Arbitrary<LocalDisk>;
    const recovery = fc.record({ deviceName: fc.constantFrom("/dev/xvda", "/dev/xvdb", "/dev/xvdc"), bytes: fc.constantFrom(10 * GIB, 20 * GIB, 30 * GIB) });
    const source = fc.record({ deviceName: fc.constantFrom("/dev/sda", "/dev/sdb", "sdc"), bytes: fc.constantFrom(9.75 * GIB, 10 * GIB, 20 * GIB) });
    let proposed = 0;
    fc.assert(
      fc.property(
        fc.uniqueArray(recovery, { selector: (d) => d.deviceName, minLength: 1, maxLength: 3 }),
        fc.uniqueArray(local, { selector: (d) => d.name, maxLength: 4 }),
        fc.option(fc.array(source, { maxLength: 3 })),
        (volumes, locals, sourceDisks) => {
          const result = autoMapDevices(volumes, locals, sourceDisks === null ? undefined : { sourceDisks });
          if (result === null) return;
          proposed++;
          expect(result.map((m) => m.recoveryDisk)).toEqual(volumes);
          const used = result.map((m) => m.localDisk);
          expect(used.every((d) => d !== null && locals.includes(d) && d.refusal === undefined)).toBe(true);
          expect(new Set(used).size).toBe(used.length);
          for (const m of result) expect(fitsVolume(m.localDisk?.bytes ?? 0, m.recoveryDisk.bytes)).not.toBe("too-small");
        },
      ),
      { numRuns: 3000 },
    );
    // About 250 of 3000 random cases get a proposal; the checks above must see some.
    expect(proposed).toBeGreaterThan(50);
  });
});
