import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  DeviceMappingError,
  EXCLUDE,
  formatDeviceMapping,
  MAPPING_FORMATS,
  type MappingEntry,
  type MappingFormat,
  parseDeviceMapping,
} from "../../src/mapping/index.js";

/** Whether a string holds a C0 control character or DEL (written without a regex on purpose). */
const controlIn = (s: string): boolean => [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

const e = (recoveryInstanceDeviceName: string, failbackClientDeviceName: string): MappingEntry => ({ recoveryInstanceDeviceName, failbackClientDeviceName });

function thrown(f: () => unknown): DeviceMappingError {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(DeviceMappingError);
    return error as DeviceMappingError;
  }
  throw new Error("no error thrown");
}

// Pieces of real device names plus the characters that stress the forms (":" in by-path values,
// quotes, spaces inside names, "__proto__", non-ASCII).
const piece = fc.constantFrom("/dev/", "xvd", "sd", "nvme0n1", "pci-0000:00:10.0-scsi-0:0:0:1", ":", "-", "_", ".", '"', "'", " ", "\\", "0", "7", "__proto__", "é", "💾", "b");
const safeName = fc
  .array(piece, { minLength: 1, maxLength: 6 })
  .map((parts) => parts.join("").trim())
  .filter((s) => s !== "" && !/^exclude$/i.test(s));
const safeLocal = fc.oneof(fc.constant(EXCLUDE), safeName, safeName.map((s) => `${s}=x`));
const safeEntries = fc.uniqueArray(fc.record({ recoveryInstanceDeviceName: safeName, failbackClientDeviceName: safeLocal }), {
  minLength: 1,
  maxLength: 8,
  selector: (x) => x.recoveryInstanceDeviceName,
});

// Anything at all: the separators and wrapper words included.
const wildName = fc.string({
  unit: fc.oneof(fc.constantFrom(",", "=", ":", '"', "'", "{", "[", " ", "\t", "\n", "ALL", "all=", "exclude", "EXCLUDE", "__proto__"), fc.string({ unit: "grapheme", maxLength: 2 })),
  maxLength: 6,
});
const wildEntries = fc.array(fc.record({ recoveryInstanceDeviceName: wildName, failbackClientDeviceName: wildName }), { minLength: 0, maxLength: 5 });

describe("formatDeviceMapping", () => {
  test("parse(format(x, f)) deep-equals x for every form, on names every form can carry", () => {
    fc.assert(
      fc.property(safeEntries, fc.constantFrom(...MAPPING_FORMATS), (entries, format) => {
        expect(parseDeviceMapping(formatDeviceMapping(entries, format))).toEqual(entries);
      }),
      { numRuns: 1000 },
    );
  });

  test("on any names: format refuses with a DeviceMappingError or writes text that parses back to exactly x", () => {
    const refusedAs = new Set<string>();
    fc.assert(
      fc.property(wildEntries, fc.constantFrom(...MAPPING_FORMATS), (entries, format) => {
        let text: string;
        try {
          text = formatDeviceMapping(entries, format);
        } catch (error) {
          expect(error).toBeInstanceOf(DeviceMappingError);
          refusedAs.add((error as DeviceMappingError).code);
          return;
        }
        expect(parseDeviceMapping(text)).toEqual(entries);
      }),
      { numRuns: 2000 },
    );
    // The generator must reach the refusals, or the property above proves little.
    expect([...refusedAs].sort()).toEqual(expect.arrayContaining(["EMPTY_MAPPING", "EMPTY_NAME", "INVALID_CHARACTER", "UNREPRESENTABLE"]));
  });

  test("the JSON forms carry every trimmed, non-empty name, separators and quotes included", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ recoveryInstanceDeviceName: fc.string({ minLength: 1 }), failbackClientDeviceName: fc.string({ minLength: 1 }) }), {
          minLength: 1,
          maxLength: 6,
          selector: (x) => x.recoveryInstanceDeviceName,
        }),
        fc.constantFrom<MappingFormat>("json", "drs"),
        (entries, format) => {
          fc.pre(entries.every((x) => [x.recoveryInstanceDeviceName, x.failbackClientDeviceName].every((n) => n === n.trim() && n !== "" && !controlIn(n) && (n === EXCLUDE || !/^exclude$/i.test(n)))));
          expect(parseDeviceMapping(formatDeviceMapping(entries, format))).toEqual(entries);
        },
      ),
      { numRuns: 1000 },
    );
  });

  test.each<[string, MappingEntry[], MappingFormat, string]>([
    ["comma in a recovery name (CSV)", [e("a,b", "c")], "csv", "UNREPRESENTABLE"],
    ["comma in a local name (CSV)", [e("a", "b,c")], "csv", "UNREPRESENTABLE"],
    ["= in a recovery name (CSV)", [e("a=b", "c")], "csv", "UNREPRESENTABLE"],
    ["first recovery name starting with { (CSV)", [e("{a", "b")], "csv", "UNREPRESENTABLE"],
    ["first recovery name starting with [ (CSV)", [e("[a", "b")], "csv", "UNREPRESENTABLE"],
    ["first recovery name ALL (CSV)", [e("ALL", "b")], "csv", "UNREPRESENTABLE"],
    ["first recovery name all (CSV)", [e("all", "b")], "csv", "UNREPRESENTABLE"],
    ["whitespace around a name (every form)", [e(" a", "b")], "json", "UNREPRESENTABLE"],
    ["whitespace around a local name", [e("a", "b\n")], "drs", "UNREPRESENTABLE"],
    ["a local disk literally named exclude", [e("a", "exclude")], "drs", "UNREPRESENTABLE"],
    ["a line break inside a name", [e("a", "b\nc")], "json", "INVALID_CHARACTER"],
    ["empty name", [e("", "b")], "json", "EMPTY_NAME"],
    ["blank name", [e("a", "  ")], "csv", "EMPTY_NAME"],
    ["no entries", [], "csv", "EMPTY_MAPPING"],
    ["the same recovery device twice", [e("a", "b"), e("a", "c")], "drs", "DUPLICATE_RECOVERY_DEVICE"],
    ["a non-string name", [{ recoveryInstanceDeviceName: 1, failbackClientDeviceName: "b" } as unknown as MappingEntry], "json", "NON_STRING_VALUE"],
    ["an unknown format", [e("a", "b")], "yaml" as MappingFormat, "INVALID_FORMAT"],
  ])("refuses %s", (_name, entries, format, code) => {
    const error = thrown(() => formatDeviceMapping(entries, format));
    expect(error.code).toBe(code);
    expect(error.message).not.toMatch(/\n/);
  });

  test("what CSV cannot carry, JSON can", () => {
    const entries = [e("a,b", "c=d"), e("x=y", "pci-0000:00:10.0-scsi-0:0:0:1")];
    expect(thrown(() => formatDeviceMapping(entries, "csv")).token).toBe("a,b");
    expect(parseDeviceMapping(formatDeviceMapping(entries, "json"))).toEqual(entries);
    expect(parseDeviceMapping(formatDeviceMapping(entries, "drs"))).toEqual(entries);
  });

  test.each<[MappingFormat, string]>([
    ["csv", "/dev/xvda=/dev/sda,/dev/xvdb=EXCLUDE"],
    ["json", '{"/dev/xvda":"/dev/sda","/dev/xvdb":"EXCLUDE"}'],
    ["drs", '[{"recoveryInstanceDeviceName":"/dev/xvda","failbackClientDeviceName":"/dev/sda"},{"recoveryInstanceDeviceName":"/dev/xvdb","failbackClientDeviceName":"EXCLUDE"}]'],
  ])("writes %s as documented", (format, text) => {
    expect(formatDeviceMapping([e("/dev/xvda", "/dev/sda"), e("/dev/xvdb", EXCLUDE)], format)).toBe(text);
  });

  test("__proto__ and integer-like names round trip in order through JSON", () => {
    const entries = [e("__proto__", "/dev/sdb"), e("10", "/dev/sdc"), e("2", EXCLUDE)];
    for (const format of MAPPING_FORMATS) expect(parseDeviceMapping(formatDeviceMapping(entries, format))).toEqual(entries);
  });
});
