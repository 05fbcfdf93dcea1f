/*
 * formatDeviceMapping: entries back to text in one of the three forms, such that
 * parseDeviceMapping(formatDeviceMapping(x, f)) deep-equals x. Whatever the chosen form cannot carry
 * (a name the parser would trim, split or read differently) is refused with UNREPRESENTABLE rather
 * than written as text that would parse into a different mapping.
 *
 * JSON objects are written member by member, not through JSON.stringify of an object: a JavaScript
 * object would reorder integer-like keys and treat "__proto__" as the prototype.
 */
import { DeviceMappingError, quote, show } from "./errors.js";
import { ALL_PREFIX, hasControlCharacter, isExclude } from "./parse.js";
import { EXCLUDE, type MappingEntry } from "./types.js";

/** The text forms of a mapping: one-line CSV, a JSON object, the DRS API's JSON list. */
export const MAPPING_FORMATS = ["csv", "json", "drs"] as const;
export type MappingFormat = (typeof MAPPING_FORMATS)[number];

function unrepresentable(name: string, why: string): DeviceMappingError {
  return new DeviceMappingError("UNREPRESENTABLE", name, `${quote(name)} cannot be written ${why}`);
}

/** Checks what every form needs: strings, non-empty, untrimmed, canonical EXCLUDE, no repeats. */
function checkEntries(entries: readonly MappingEntry[]): void {
  if (!Array.isArray(entries)) throw new DeviceMappingError("WRONG_SHAPE", show(entries), "formatDeviceMapping needs a list of entries");
  if (entries.length === 0) throw new DeviceMappingError("EMPTY_MAPPING", "", "the device mapping lists no volumes: nothing to format");
  const seen = new Set<string>();
  for (const e of entries) {
    const recovery: unknown = e?.recoveryInstanceDeviceName;
    const local: unknown = e?.failbackClientDeviceName;
    if (typeof recovery !== "string" || typeof local !== "string") {
      throw new DeviceMappingError("NON_STRING_VALUE", show(recovery), "each entry needs string recoveryInstanceDeviceName and failbackClientDeviceName");
    }
    for (const name of [recovery, local]) {
      if (name.trim() === "") throw new DeviceMappingError("EMPTY_NAME", name, "an entry has an empty device name");
      if (name !== name.trim()) throw unrepresentable(name, "because the parser ignores whitespace around names");
      if (hasControlCharacter(name)) throw new DeviceMappingError("INVALID_CHARACTER", name, `${quote(name)} contains a control character; device names cannot`);
    }
    if (isExclude(local) && local !== EXCLUDE) throw unrepresentable(local, `as a device name: it reads as ${EXCLUDE}`);
    if (seen.has(recovery)) throw new DeviceMappingError("DUPLICATE_RECOVERY_DEVICE", recovery, `the recovery device ${quote(recovery)} is mapped more than once`);
    seen.add(recovery);
  }
}

function csv(entries: readonly MappingEntry[]): string {
  return entries
    .map((e, i) => {
      const { recoveryInstanceDeviceName: recovery, failbackClientDeviceName: local } = e;
      if (recovery.includes(",") || local.includes(",")) throw unrepresentable(recovery.includes(",") ? recovery : local, 'in CSV: it contains ","; use the json or drs form');
      if (recovery.includes("=")) throw unrepresentable(recovery, 'in CSV: a recovery device name containing "=" would be split there; use the json or drs form');
      if (i === 0 && (recovery.startsWith("{") || recovery.startsWith("[") || ALL_PREFIX.test(`${recovery}=`))) {
        throw unrepresentable(recovery, "first in CSV: the text would read as JSON or as the ALL= wrapper; use the json or drs form");
      }
      return `${recovery}=${local}`;
    })
    .join(",");
}

/** The mapping as text in `format`; throws DeviceMappingError (UNREPRESENTABLE, ...) instead of writing text that parses differently. */
export function formatDeviceMapping(entries: readonly MappingEntry[], format: MappingFormat): string {
  checkEntries(entries);
  switch (format) {
    case "csv":
      return csv(entries);
    case "json":
      return `{${entries.map((e) => `${JSON.stringify(e.recoveryInstanceDeviceName)}:${JSON.stringify(e.failbackClientDeviceName)}`).join(",")}}`;
    case "drs":
      return JSON.stringify(entries.map((e) => ({ recoveryInstanceDeviceName: e.recoveryInstanceDeviceName, failbackClientDeviceName: e.failbackClientDeviceName })));
    default:
      throw new DeviceMappingError("INVALID_FORMAT", show(format), `unknown mapping format ${quote(show(format))}: use ${MAPPING_FORMATS.join(", ")}`);
  }
}
