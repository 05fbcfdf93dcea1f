import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { checkVolumeSizes, DeviceMappingError, type Fit, fitsVolume, GIB, type LocalDisk, type RecoveryDisk } from "../../src/mapping/index.js";

describe("fitsVolume", () => {
  test.each<[string, number, number, Fit]>([
    ["exact size", 10 * GIB, 10 * GIB, "fits"],
    ["larger", 20 * GIB, 10 * GIB, "fits"],
    ["one byte larger", 10 * GIB + 1, 10 * GIB, "fits"],
    ["one byte short of a whole-GiB volume", 10 * GIB - 1, 10 * GIB, "fractional"],
    ["9.75 GiB <- 10 GiB (fractional)", 9.75 * GIB, 10 * GIB, "fractional"],
    ["9.000001 GiB <- 10 GiB (fractional: rounds up to 10)", 9 * GIB + 1, 10 * GIB, "fractional"],
    ["9 GiB <- 10 GiB (whole GiB short)", 9 * GIB, 10 * GIB, "too-small"],
    ["9.75 GiB <- 11 GiB (rounds up to 10, not 11)", 9.75 * GIB, 11 * GIB, "too-small"],
    ["10 GiB <- 10 GiB + 1 byte", 10 * GIB, 10 * GIB + 1, "too-small"],
    ["10.5 GiB <- 10 GiB + 1 byte", 10.5 * GIB, 10 * GIB + 1, "fits"],
    ["10 GiB + 1 byte short of a volume of 10 GiB + 2 bytes", 10 * GIB + 1, 10 * GIB + 2, "too-small"],
    ["one byte short of a volume that is not whole GiB", 10 * GIB + 511, 10 * GIB + 512, "too-small"],
    ["empty volume", 0, 0, "fits"],
    ["empty disk, 1 GiB volume", 0, GIB, "too-small"],
    ["16 TiB", 16 * 1024 * GIB, 16 * 1024 * GIB, "fits"],
  ])("%s", (_name, local, recovery, fit) => {
    expect(fitsVolume(local, recovery)).toBe(fit);
  });

  test.each<[string, number, number]>([
    ["negative", -1, GIB],
    ["fractional bytes", 1.5, GIB],
    ["NaN", Number.NaN, GIB],
    ["Infinity", GIB, Number.POSITIVE_INFINITY],
    ["beyond 2^53", 2 ** 53 + 2, GIB],
    ["a string", "10" as unknown as number, GIB],
  ])("refuses a size that is %s with INVALID_SIZE", (_name, local, recovery) => {
    expect(() => fitsVolume(local, recovery)).toThrow(DeviceMappingError);
    try {
      fitsVolume(local, recovery);
    } catch (error) {
      expect((error as DeviceMappingError).code).toBe("INVALID_SIZE");
    }
  });

  test("agrees with the documented rule on random sizes", () => {
    const bytes = fc.oneof(fc.integer({ min: 0, max: 64 * GIB }), fc.integer({ min: 0, max: 64 }).map((g) => g * GIB), fc.integer({ min: 1, max: 64 }).map((g) => g * GIB - 1));
    fc.assert(
      fc.property(bytes, bytes, (local, recovery) => {
        const fit = fitsVolume(local, recovery);
        if (local >= recovery) expect(fit).toBe("fits");
        else if (fit === "fractional") {
          expect(local % GIB).not.toBe(0);
          expect(recovery % GIB).toBe(0);
          expect(recovery - local).toBeLessThan(GIB);
        } else expect(Math.ceil(local / GIB) * GIB === recovery && local % GIB !== 0).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("checkVolumeSizes", () => {
  const local = (name: string, bytes: number): LocalDisk => ({ name, bytes, byPath: [], byId: [], byUuid: [] });
  const vol = (deviceName: string, bytes: number): RecoveryDisk => ({ deviceName, bytes });

  test("gives each mapped volume its verdict and leaves excluded ones out", () => {
    const a = local("/dev/sda", 10 * GIB);
    const b = local("/dev/sdb", 9.75 * GIB);
    const fits = checkVolumeSizes([
      { recoveryDisk: vol("/dev/xvda", 10 * GIB), localDisk: a },
      { recoveryDisk: vol("/dev/xvdb", 10 * GIB), localDisk: b },
      { recoveryDisk: vol("/dev/xvdc", 10 * GIB), localDisk: null },
    ]);
    expect(fits.map((f) => [f.recoveryDisk.deviceName, f.localDisk.name, f.fit])).toEqual([
      ["/dev/xvda", "/dev/sda", "fits"],
      ["/dev/xvdb", "/dev/sdb", "fractional"],
    ]);
  });

  test("names every disk too small in one LOCAL_DISK_TOO_SMALL error", () => {
    let error: unknown;
    try {
      checkVolumeSizes([
        { recoveryDisk: vol("/dev/xvda", 10 * GIB), localDisk: local("/dev/sda", 9 * GIB) },
        { recoveryDisk: vol("/dev/xvdb", 10 * GIB + 1), localDisk: local("/dev/sdb", 10 * GIB) },
        { recoveryDisk: vol("/dev/xvdc", 10 * GIB), localDisk: local("/dev/sdc", 10 * GIB) },
      ]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DeviceMappingError);
    const { code, problems } = error as DeviceMappingError;
    expect(code).toBe("LOCAL_DISK_TOO_SMALL");
    expect(problems.map((p) => p.token)).toEqual(["/dev/sda", "/dev/sdb"]);
    expect(problems[1]?.message).toContain(`${10 * GIB + 1} bytes`);
  });

  test("shows sizes below a GiB in MiB, not as 0.00 GiB", () => {
    const tooSmall = () => checkVolumeSizes([{ recoveryDisk: vol("/dev/xvda", 8 * 2 ** 20), localDisk: local("/dev/sda", 4 * 2 ** 20) }]);
    expect(tooSmall).toThrow(/\/dev\/sda \(4\.00 MiB = 4194304 bytes\) is smaller than the recovery volume \/dev\/xvda \(8\.00 MiB = 8388608 bytes\)/);
  });
});
