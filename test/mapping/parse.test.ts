import { describe, expect, test } from "vitest";
import { DeviceMappingError, EXCLUDE, MAX_INPUT_CHARS, parseDeviceMapping, type MappingEntry } from "../../src/mapping/index.js";

const e = (recoveryInstanceDeviceName: string, failbackClientDeviceName: string): MappingEntry => ({ recoveryInstanceDeviceName, failbackClientDeviceName });

/** The thrown DeviceMappingError, failing the test when something else (or nothing) is thrown. */
function refusal(text: unknown): DeviceMappingError {
  try {
    parseDeviceMapping(text as string);
  } catch (error) {
    expect(error).toBeInstanceOf(DeviceMappingError);
    return error as DeviceMappingError;
  }
  throw new Error(`parsed without error: ${JSON.stringify(text)}`);
}

describe("parseDeviceMapping: accepted forms", () => {
  const two = [e("/dev/xvda", "/dev/sda"), e("/dev/xvdb", "/dev/sdb")];
  const byPath = [e("/dev/xvda", "pci-0000:00:10.0-scsi-0:0:0:0"), e("/dev/xvdb", EXCLUDE)];
  test.each<[string, string, MappingEntry[]]>([
    ["CSV with =", "/dev/xvda=/dev/sda,/dev/xvdb=/dev/sdb", two],
    ["CSV with :", "/dev/xvda:/dev/sda,/dev/xvdb:/dev/sdb", two],
    ["CSV mixing = and :", "/dev/xvda=/dev/sda,/dev/xvdb:/dev/sdb", two],
    ["CSV with whitespace everywhere", "  /dev/xvda = /dev/sda ,\t/dev/xvdb\t=\t/dev/sdb \n", two],
    ["CSV, by-path value keeps its colons (split at =)", "/dev/xvda=pci-0000:00:10.0-scsi-0:0:0:0,/dev/xvdb=EXCLUDE", byPath],
    ["CSV with : and a by-path value (split at the first :)", "xvda:pci-0000:00:10.0-scsi-0:0:0:0", [e("xvda", "pci-0000:00:10.0-scsi-0:0:0:0")]],
    ["CSV, = wins over an earlier :", "a:b=c", [e("a:b", "c")]],
    ["CSV, a value may hold =", "/dev/xvda=x=y", [e("/dev/xvda", "x=y")]],
    ["CSV, one pair", "/dev/xvda=/dev/sda", [e("/dev/xvda", "/dev/sda")]],
    ["JSON object", '{"/dev/xvda":"/dev/sda","/dev/xvdb":"/dev/sdb"}', two],
    ["JSON object, pretty-printed", '{\n  "/dev/xvda": "/dev/sda",\n  "/dev/xvdb": "/dev/sdb"\n}\n', two],
    ["JSON object, integer-like keys keep their order", '{"10":"/dev/sda","2":"/dev/sdb"}', [e("10", "/dev/sda"), e("2", "/dev/sdb")]],
    ["JSON object, escapes decoded", '{"\\/dev\\/xvda":"\\u002fdev/sda"}', [e("/dev/xvda", "/dev/sda")]],
    ["JSON object, names trimmed", '{" /dev/xvda ":" /dev/sda"}', [e("/dev/xvda", "/dev/sda")]],
    [
      "DRS list",
      '[{"recoveryInstanceDeviceName":"/dev/xvda","failbackClientDeviceName":"/dev/sda"},{"failbackClientDeviceName":"/dev/sdb","recoveryInstanceDeviceName":"/dev/xvdb"}]',
      two,
    ],
    ["ALL=\"...\"", 'ALL="/dev/xvda=/dev/sda,/dev/xvdb=/dev/sdb"', two],
    ["ALL='...'", "ALL='/dev/xvda=/dev/sda,/dev/xvdb=/dev/sdb'", two],
    ["bare ALL=...", "ALL=/dev/xvda=/dev/sda,/dev/xvdb=/dev/sdb", two],
    ["all = \" ... \" (any case, spaces)", '  all = " /dev/xvda=/dev/sda , /dev/xvdb=/dev/sdb " ', two],
    ["ALL= around a JSON object", `ALL='{"/dev/xvda":"/dev/sda","/dev/xvdb":"/dev/sdb"}'`, two],
    ["EXCLUDE", "/dev/xvda=/dev/sda,/dev/xvdb=EXCLUDE", [e("/dev/xvda", "/dev/sda"), e("/dev/xvdb", EXCLUDE)]],
    ["exclude in any case becomes EXCLUDE", "a=exclude,b=Exclude,c=eXcLuDe", [e("a", EXCLUDE), e("b", EXCLUDE), e("c", EXCLUDE)]],
    ["exclude in JSON becomes EXCLUDE", '{"a":"exclude"}', [e("a", EXCLUDE)]],
    ["EXCLUDE-like names stay names", "a=EXCLUDED,b=xEXCLUDE", [e("a", "EXCLUDED"), e("b", "xEXCLUDE")]],
    ["image-file paths", "/dev/xvda=/var/tmp/disk a.img", [e("/dev/xvda", "/var/tmp/disk a.img")]],
    ["quotes inside CSV names are kept", "a=\"b\"", [e("a", '"b"')]],
  ])("%s", (_name, text, expected) => {
    expect(parseDeviceMapping(text)).toEqual(expected);
  });
});

describe("parseDeviceMapping: every error has its code and token", () => {
  test.each<[string, unknown, string, string]>([
    ["not a string", 42, "INPUT_NOT_STRING", "42"],
    ["undefined", undefined, "INPUT_NOT_STRING", "undefined"],
    ["empty", "", "EMPTY_INPUT", ""],
    ["only whitespace", " \n\t ", "EMPTY_INPUT", " \n\t "],
    ["empty ALL wrapper", 'ALL=""', "EMPTY_INPUT", 'ALL=""'],
    ["bare empty ALL", "ALL=", "EMPTY_INPUT", "ALL="],
    ["unclosed quote in ALL", 'ALL="a=b', "UNBALANCED_QUOTE", '"a=b'],
    ["mismatched quotes in ALL", `ALL="a=b'`, "UNBALANCED_QUOTE", `"a=b'`],
    ["lone quote in ALL", 'ALL="', "UNBALANCED_QUOTE", '"'],
    ["pair without separator", "/dev/xvda=/dev/sda,/dev/xvdb", "MISSING_SEPARATOR", "/dev/xvdb"],
    ["single word", "sda", "MISSING_SEPARATOR", "sda"],
    ["empty recovery side", "=/dev/sda", "EMPTY_NAME", "=/dev/sda"],
    ["empty local side", "/dev/xvda=", "EMPTY_NAME", "/dev/xvda="],
    ["blank local side with :", "/dev/xvda:  ", "EMPTY_NAME", "/dev/xvda:"],
    ["empty pair in the middle", "a=b,,c=d", "EMPTY_PAIR", ""],
    ["blank pair", "a=b, ,c=d", "EMPTY_PAIR", " "],
    ["trailing comma", "a=b,", "EMPTY_PAIR", ""],
    ["leading comma", ",a=b", "EMPTY_PAIR", ""],
    ["same recovery device twice (CSV)", "/dev/xvda=/dev/sda,/dev/xvda=/dev/sdb", "DUPLICATE_RECOVERY_DEVICE", "/dev/xvda"],
    ["same after trimming", "/dev/xvda=/dev/sda, /dev/xvda =EXCLUDE", "DUPLICATE_RECOVERY_DEVICE", "/dev/xvda"],
    ["same key twice (JSON object)", '{"/dev/xvda":"/dev/sda","/dev/xvda":"/dev/sdb"}', "DUPLICATE_RECOVERY_DEVICE", "/dev/xvda"],
    [
      "same device twice (DRS list)",
      '[{"recoveryInstanceDeviceName":"a","failbackClientDeviceName":"b"},{"recoveryInstanceDeviceName":"a","failbackClientDeviceName":"c"}]',
      "DUPLICATE_RECOVERY_DEVICE",
      "a",
    ],
    ["broken JSON object", '{"/dev/xvda":"/dev/sda"', "INVALID_JSON", '{"/dev/xvda":"/dev/sda"'],
    ["broken JSON list", "[{]", "INVALID_JSON", "[{]"],
    ["JSON with a trailing comma", '{"a":"b",}', "INVALID_JSON", '{"a":"b",}'],
    ["JSON list of strings", '["/dev/sda"]', "WRONG_SHAPE", "a string"],
    ["JSON list of lists", "[[]]", "WRONG_SHAPE", "a list"],
    ["DRS item with an unknown field", '[{"recoveryInstanceDeviceName":"a","failbackClientDeviceName":"b","x":"c"}]', "WRONG_SHAPE", "x"],
    ["DRS item without the local field", '[{"recoveryInstanceDeviceName":"a"}]', "WRONG_SHAPE", "failbackClientDeviceName"],
    ["DRS item with a field twice", '[{"recoveryInstanceDeviceName":"a","recoveryInstanceDeviceName":"b","failbackClientDeviceName":"c"}]', "WRONG_SHAPE", "recoveryInstanceDeviceName"],
    ["DRS item with a field twice", '[{"recoveryInstanceDeviceName":"a","recoveryInstanceDeviceName":"b","failbackClientDeviceName":"c"}]', "WRONG_SHAPE", "recoveryInstanceDeviceName"],
    ["number value (object)", '{"/dev/xvda":1}', "NON_STRING_VALUE", "/dev/xvda"],
    ["null value (object)", '{"/dev/xvda":null}', "NON_STRING_VALUE", "/dev/xvda"],
    ["object value (object)", '{"/dev/xvda":{"a":"b"}}', "NON_STRING_VALUE", "/dev/xvda"],
    ["list value (object)", '{"/dev/xvda":["/dev/sda"]}', "NON_STRING_VALUE", "/dev/xvda"],
    ["number value (DRS list)", '[{"recoveryInstanceDeviceName":"a","failbackClientDeviceName":2}]', "NON_STRING_VALUE", "failbackClientDeviceName"],
    ["boolean recovery (DRS list)", '[{"recoveryInstanceDeviceName":true,"failbackClientDeviceName":"b"}]', "NON_STRING_VALUE", "recoveryInstanceDeviceName"],
    ["empty JSON object", "{}", "EMPTY_MAPPING", "{}"],
    ["empty JSON list", " [ ] ", "EMPTY_MAPPING", "[ ]"],
    ["pairs on separate lines", "/dev/xvda=/dev/sda\n/dev/xvdb=/dev/sdb", "INVALID_CHARACTER", "/dev/xvda=/dev/sda\n/dev/xvdb=/dev/sdb"],
    ["a tab inside a JSON name", '{"/dev/xvda":"/dev/\\tsda"}', "INVALID_CHARACTER", "/dev/xvda: /dev/\tsda"],
    ["empty key (JSON)", '{"":"/dev/sda"}', "EMPTY_NAME", ""],
    ["blank value (JSON)", '{"a":"  "}', "EMPTY_NAME", "a:   "],
    ["empty value (DRS list)", '[{"recoveryInstanceDeviceName":"a","failbackClientDeviceName":""}]', "EMPTY_NAME", "a: "],
  ])("%s", (_name, text, code, token) => {
    const error = refusal(text);
    expect(error.code).toBe(code);
    expect(error.token).toBe(token);
    expect(error.name).toBe("DeviceMappingError");
    expect(error.problems).toEqual([{ code, token, message: error.message }]);
    expect(error.message).not.toMatch(/\n/);
    expect(error.message.length).toBeGreaterThan(20);
  });

  test("INVALID_JSON keeps the JSON parser's error as its cause", () => {
    const error = refusal("{nope}");
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  test("messages name the offending pair so a person can find it", () => {
    expect(refusal("/dev/xvda=/dev/sda,/dev/xvdb").message).toContain('"/dev/xvdb"');
    expect(refusal("/dev/xvda=/dev/sda,/dev/xvda=/dev/sdb").message).toContain('"/dev/xvda"');
  });
});

describe("parseDeviceMapping: hostile input", () => {
  test("__proto__ as a JSON key is a plain device name and pollutes nothing", () => {
    const text = '{"__proto__":"/dev/sdb","constructor":"/dev/sdc","toString":"EXCLUDE"}';
    const entries = parseDeviceMapping(text);
    expect(entries).toEqual([e("__proto__", "/dev/sdb"), e("constructor", "/dev/sdc"), e("toString", EXCLUDE)]);
    expect(Object.getPrototypeOf(entries[0])).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)["/dev/sdb"]).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty("polluted");
  });

  test("__proto__ in the DRS list form cannot set a prototype", () => {
    const text = '[{"recoveryInstanceDeviceName":"a","failbackClientDeviceName":"b","__proto__":{"polluted":"yes"}}]';
    expect(refusal(text).code).toBe("WRONG_SHAPE");
    const nested = '{"__proto__":{"polluted":"yes"}}';
    expect(refusal(nested).code).toBe("NON_STRING_VALUE");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test("__proto__ as a CSV name round trips as a name", () => {
    expect(parseDeviceMapping("__proto__=constructor")).toEqual([e("__proto__", "constructor")]);
    expect(({} as Record<string, unknown>).constructor).toBe(Object);
  });

  test("input over 1 MiB is refused with INPUT_TOO_LARGE before any work", () => {
    const huge = "a=b,".repeat(MAX_INPUT_CHARS / 4) + "c=d";
    const error = refusal(huge);
    expect(error.code).toBe("INPUT_TOO_LARGE");
    expect(error.token.length).toBeLessThan(50);
    expect(error.message).toContain(String(huge.length));
  });

  // Input of megabytes, nested deep enough to overflow a recursive parser, gets an answer: entries
  // or a DeviceMappingError, never a RangeError. (Its speed is not asserted here: a timed assertion
  // fails on a loaded machine; it failed once under load.)
  test.each<[string, string]>([
    ["DRS list", JSON.stringify(Array.from({ length: 11_000 }, (_, i) => ({ recoveryInstanceDeviceName: `/dev/xvd${i}`, failbackClientDeviceName: `/dev/sd${i}` })))],
    ["CSV of distinct pairs", Array.from({ length: 38_000 }, (_, i) => `/dev/xvd${i}=/dev/sd${i}`).join(",")],
    ["JSON object", `{${Array.from({ length: 30_000 }, (_, i) => `"/dev/xvd${i}":"/dev/sd${i}"`).join(",")}}`],
    ["deeply nested JSON list", "[".repeat(500_000) + "]".repeat(500_000)],
    ["deeply nested JSON object values", '{"a":'.repeat(170_000) + '"x"' + "}".repeat(170_000)],
    ["one long name", `a=${"x".repeat(MAX_INPUT_CHARS - 2)}`],
  ])("%s just under the cap: an answer, entries or a DeviceMappingError", (_name, text) => {
    expect(text.length).toBeLessThanOrEqual(MAX_INPUT_CHARS);
    try {
      const entries = parseDeviceMapping(text);
      expect(entries.length).toBeGreaterThan(0);
    } catch (error) {
      expect(error).toBeInstanceOf(DeviceMappingError);
    }
  });
});
