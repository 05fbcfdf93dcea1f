/*
 * parseDeviceMapping on garbage: it returns well-formed entries or throws DeviceMappingError with
 * a code, and nothing else (no TypeError, no RangeError, no hang, no prototype change).
 */
import fc from "fast-check";
import { afterAll, describe, expect, test } from "vitest";
import { autoMapDevices, DeviceMappingError, EXCLUDE, fitsVolume, formatDeviceMapping, parseDeviceMapping, resolveDeviceMapping } from "../../src/mapping/index.js";

/** Whether a string holds a C0 control character or DEL (written without a regex on purpose). */
const controlIn = (s: string): boolean => [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

const codes = new Set<string>();

function check(text: string): void {
  let entries;
  try {
    entries = parseDeviceMapping(text);
  } catch (error) {
    if (!(error instanceof DeviceMappingError)) throw error;
    expect(error.code).toMatch(/^[A-Z_]+$/);
    expect(typeof error.token).toBe("string");
    expect(error.message).not.toMatch(/[\r\n]/);
    codes.add(error.code);
    return;
  }
  expect(entries.length).toBeGreaterThan(0);
  const seen = new Set<string>();
  for (const x of entries) {
    expect(Object.keys(x).sort()).toEqual(["failbackClientDeviceName", "recoveryInstanceDeviceName"]);
    for (const name of [x.recoveryInstanceDeviceName, x.failbackClientDeviceName]) {
      expect(typeof name).toBe("string");
      expect(name).toBe(name.trim());
      expect(name).not.toBe("");
      expect(controlIn(name)).toBe(false);
    }
    expect(/^exclude$/i.test(x.failbackClientDeviceName) ? x.failbackClientDeviceName : EXCLUDE).toBe(EXCLUDE);
    expect(seen.has(x.recoveryInstanceDeviceName)).toBe(false);
    seen.add(x.recoveryInstanceDeviceName);
  }
}

// Text made of the characters the grammar cares about, so the fuzzer reaches deep paths.
const grammarish = fc.string({
  unit: fc.constantFrom(",", "=", ":", '"', "'", "{", "}", "[", "]", " ", "\n", "\\", "a", "/dev/sd", "ALL=", "EXCLUDE", "__proto__", "1", "null", "é"),
  maxLength: 40,
});

describe("parseDeviceMapping fuzz", () => {
  afterAll(() => {
    expect(({} as Record<string, unknown>).a).toBeUndefined();
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  test("arbitrary strings", () => {
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 200 }), check), { numRuns: 3000 });
  });

  test("strings of grammar characters", () => {
    fc.assert(fc.property(grammarish, check), { numRuns: 5000 });
  });

  test("arbitrary JSON values, stringified", () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => check(JSON.stringify(v))), { numRuns: 2000 });
  });

  test("JSON close to the accepted shapes", () => {
    const name = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom("__proto__", "constructor", "EXCLUDE", "/dev/sda"));
    const value = fc.oneof(name, fc.jsonValue({ maxDepth: 2 }));
    const object = fc.array(fc.tuple(name, value), { maxLength: 5 }).map((pairs) => `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",")}}`);
    const field = fc.constantFrom("recoveryInstanceDeviceName", "failbackClientDeviceName", "__proto__", "x");
    const item = fc.array(fc.tuple(field, value), { maxLength: 3 }).map((pairs) => `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",")}}`);
    const list = fc.array(fc.oneof(item, fc.jsonValue({ maxDepth: 1 }).map((v) => JSON.stringify(v))), { maxLength: 4 }).map((xs) => `[${xs.join(",")}]`);
    fc.assert(fc.property(fc.oneof(object, list), fc.constantFrom("", "ALL=", "ALL='"), (text, wrap) => check(wrap === "ALL='" ? `${wrap}${text}'` : `${wrap}${text}`)), {
      numRuns: 3000,
    });
  });

  test("values of any type, null-prototype objects and symbols included", () => {
    const anything = fc.oneof(fc.anything({ withNullPrototype: true, withMap: true, withSet: true, withBigInt: true }), fc.constant(Symbol("x")), fc.constant(() => 1));
    fc.assert(
      fc.property(anything, (value) => {
        if (typeof value === "string") return check(value);
        expect(() => parseDeviceMapping(value as string)).toThrow(expect.objectContaining({ name: "DeviceMappingError", code: "INPUT_NOT_STRING" }));
      }),
      { numRuns: 500 },
    );
  });

  test("the other functions refuse values of any type with a DeviceMappingError too", () => {
    const odd = [Object.create(null), Symbol("x"), 10n, [], { toString: () => { throw new Error("boom"); } }];
    for (const value of odd) {
      expect(() => formatDeviceMapping(value, "csv")).toThrow(DeviceMappingError);
      expect(() => formatDeviceMapping([{ recoveryInstanceDeviceName: value, failbackClientDeviceName: "b" }], "json")).toThrow(DeviceMappingError);
      expect(() => formatDeviceMapping([{ recoveryInstanceDeviceName: "a", failbackClientDeviceName: "b" }], value)).toThrow(DeviceMappingError);
      expect(() => resolveDeviceMapping([], { valueFormat: value, recoveryDisks: [], localDisks: [] })).toThrow(DeviceMappingError);
      expect(() => resolveDeviceMapping([{ recoveryInstanceDeviceName: value, failbackClientDeviceName: "b" }], { valueFormat: "dev-name", recoveryDisks: [{ deviceName: "a", bytes: 1 }], localDisks: [] })).toThrow(DeviceMappingError);
      expect(() => resolveDeviceMapping([], { valueFormat: "dev-name", recoveryDisks: [{ deviceName: value, bytes: 1 }], localDisks: [] })).toThrow(DeviceMappingError);
      expect(() => fitsVolume(value, 1)).toThrow(DeviceMappingError);
      expect(autoMapDevices([{ deviceName: "a", bytes: value }], [])).toBeNull();
    }
  });

  test("the fuzzers reached the error codes", () => {
    expect([...codes]).toEqual(
      expect.arrayContaining(["EMPTY_INPUT", "MISSING_SEPARATOR", "EMPTY_NAME", "EMPTY_PAIR", "DUPLICATE_RECOVERY_DEVICE", "INVALID_JSON", "WRONG_SHAPE", "NON_STRING_VALUE", "EMPTY_MAPPING", "INVALID_CHARACTER"]),
    );
  });
});
