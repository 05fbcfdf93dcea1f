/*
 * parseDeviceMapping: the three forms of `--device-mapping` (CSV pairs, a JSON object, a DRS JSON
 * list) and the prompt's `ALL="..."` wrapper, to entries in the DRS API's shape.
 *
 * Invariants: the result is never partial and never a guess; anything else is a DeviceMappingError.
 * Names are trimmed; an empty side, a control character in a name (pairs on separate lines), a
 * repeated recovery device, a non-string JSON value are errors.
 * The local value "exclude" in any letter case becomes the canonical EXCLUDE. JSON objects are read
 * through readJsonTree, so member order is kept, repeated keys are seen and `__proto__` is a plain
 * name. Input longer than MAX_INPUT_CHARS is refused before any work.
 */
import { DeviceMappingError, quote, show } from "./errors.js";
import { type JsonNode, readJsonTree } from "./json-tree.js";
import { EXCLUDE, type MappingEntry } from "./types.js";

/** The longest input parsed: 1 MiB of characters, far beyond any real server's mapping. */
export const MAX_INPUT_CHARS = 1024 * 1024;

const RECOVERY = "recoveryInstanceDeviceName";
const LOCAL = "failbackClientDeviceName";

const EXCLUDE_ANY_CASE = /^exclude$/i;

/** Whether a local value means "leave this recovery volume out" (EXCLUDE in any ASCII letter case). */
export function isExclude(value: string): boolean {
  return EXCLUDE_ANY_CASE.test(value);
}

// No device or image-file name holds a control character; one inside a name means pairs were put
// on separate lines (or a paste went wrong), which must be reported, not read as one odd name.
// eslint-disable-next-line no-control-regex -- control characters are exactly what is looked for
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Whether a name holds a control character (refused in every form). */
export function hasControlCharacter(name: string): boolean {
  return CONTROL.test(name);
}

/** The start of the prompt's whole-mapping answer: ALL= in any letter case. */
export const ALL_PREFIX = /^ALL\s*=/i;

/** Entries from any of the documented forms; throws DeviceMappingError for anything malformed. */
export function parseDeviceMapping(text: string): MappingEntry[] {
  if (typeof text !== "string") {
    throw new DeviceMappingError("INPUT_NOT_STRING", show(text), `the device mapping must be text, not ${text === null ? "null" : typeof text}`);
  }
  if (text.length > MAX_INPUT_CHARS) {
    throw new DeviceMappingError(
      "INPUT_TOO_LARGE",
      `${text.slice(0, 40)}...`,
      `the device mapping is ${text.length} characters long; the limit is ${MAX_INPUT_CHARS} (1 MiB): pass one pair per recovery volume`,
    );
  }
  let body = text.trim();
  const all = ALL_PREFIX.exec(body);
  if (all !== null) body = unwrapAll(body.slice(all[0].length).trim());
  if (body === "") {
    throw new DeviceMappingError("EMPTY_INPUT", text, 'the device mapping is empty: give pairs such as "/dev/xvda=/dev/sda,/dev/xvdb=EXCLUDE"');
  }
  const entries = body.startsWith("{") || body.startsWith("[") ? parseJson(body) : parseCsv(body);
  checkDuplicates(entries);
  return entries;
}

/** The inside of ALL="...", ALL='...' or bare ALL=...; quotes must pair up. */
function unwrapAll(rest: string): string {
  const q = rest[0];
  if (q !== '"' && q !== "'") return rest;
  if (rest.length < 2 || !rest.endsWith(q)) {
    throw new DeviceMappingError("UNBALANCED_QUOTE", rest, `the quote opened by ALL=${q} is not closed at the end: write ALL=${q}recovery=local,...${q}`);
  }
  return rest.slice(1, -1).trim();
}

function entry(recovery: string, local: string): MappingEntry {
  return { recoveryInstanceDeviceName: recovery, failbackClientDeviceName: isExclude(local) ? EXCLUDE : local };
}

function checkName(name: string, side: "recovery" | "local", context: string): string {
  const trimmed = name.trim();
  if (trimmed === "") {
    const what = side === "recovery" ? "the recovery device (left side)" : `the local device (right side; write ${EXCLUDE} to leave the volume out)`;
    throw new DeviceMappingError("EMPTY_NAME", context, `${quote(context)} has no name for ${what}`);
  }
  if (hasControlCharacter(trimmed)) {
    throw new DeviceMappingError(
      "INVALID_CHARACTER",
      context,
      `${quote(context)} contains a control character such as a line break or tab; device names cannot: separate pairs with "," on one line`,
    );
  }
  return trimmed;
}

function parseCsv(body: string): MappingEntry[] {
  const pairs = body.split(",");
  return pairs.map((raw, i) => {
    const pair = raw.trim();
    if (pair === "") {
      const where = i === 0 ? "at the start" : i === pairs.length - 1 ? "at the end" : `after pair ${i}`;
      throw new DeviceMappingError("EMPTY_PAIR", raw, `the device mapping has an empty pair ${where} (two commas in a row or a stray comma): remove the extra comma`);
    }
    // Split at the first '=', else the first ':', so by-path values keep their colons.
    let cut = pair.indexOf("=");
    if (cut < 0) cut = pair.indexOf(":");
    if (cut < 0) {
      throw new DeviceMappingError("MISSING_SEPARATOR", pair, `${quote(pair)} has no "=" (or ":") between the recovery device and the local device: write recovery=local`);
    }
    return entry(checkName(pair.slice(0, cut), "recovery", pair), checkName(pair.slice(cut + 1), "local", pair));
  });
}

const KIND_NAMES: Record<JsonNode["kind"], string> = {
  string: "a string",
  number: "a number",
  boolean: "a boolean",
  null: "null",
  array: "a list",
  object: "an object",
};

function parseJson(body: string): MappingEntry[] {
  try {
    JSON.parse(body);
  } catch (error) {
    // V8's message quotes a slice of the input, line breaks included: keep the message one line.
    const detail = (error instanceof Error ? error.message : show(error)).replace(/[\r\n]/g, (c) => (c === "\n" ? "\\n" : "\\r"));
    throw new DeviceMappingError("INVALID_JSON", body, `the device mapping looks like JSON but is not valid JSON (${detail}): check quotes, commas and brackets`, { cause: error });
  }
  // Two levels suffice: the list, its items; deeper containers only need their kind.
  const tree = readJsonTree(body, 2);
  if (tree.kind === "object") {
    if (tree.members.length === 0) throw emptyMapping(body);
    return tree.members.map(([key, value]) => {
      const recovery = checkName(key, "recovery", key);
      if (value.kind !== "string") {
        throw new DeviceMappingError("NON_STRING_VALUE", key, `the local device for ${quote(key)} is ${KIND_NAMES[value.kind]}; it must be a string such as "/dev/sdb" or "${EXCLUDE}"`);
      }
      return entry(recovery, checkName(value.value, "local", `${key}: ${value.value}`));
    });
  }
  if (tree.kind === "array") {
    if (tree.items.length === 0) throw emptyMapping(body);
    return tree.items.map((item, i) => drsItem(item, i));
  }
  throw new DeviceMappingError("WRONG_SHAPE", body, `the device mapping is JSON ${KIND_NAMES[tree.kind]}; give an object {"/dev/xvda":"/dev/sda"} or a list [{"${RECOVERY}":..,"${LOCAL}":..}]`);
}

function emptyMapping(body: string): DeviceMappingError {
  return new DeviceMappingError("EMPTY_MAPPING", body, "the device mapping lists no volumes: give at least one recovery=local pair");
}

/** One element of the DRS list: exactly the two fields, both strings. */
function drsItem(item: JsonNode, i: number): MappingEntry {
  const where = `list item ${i + 1}`;
  const shape = `{"${RECOVERY}":"/dev/xvda","${LOCAL}":"/dev/sda"}`;
  if (item.kind !== "object") {
    throw new DeviceMappingError("WRONG_SHAPE", KIND_NAMES[item.kind], `${where} is ${KIND_NAMES[item.kind]}; each item must be an object ${shape}`);
  }
  const fields = new Map<string, JsonNode>();
  for (const [key, value] of item.members) {
    if (key !== RECOVERY && key !== LOCAL) {
      throw new DeviceMappingError("WRONG_SHAPE", key, `${where} has the field ${quote(key)}; only "${RECOVERY}" and "${LOCAL}" are allowed`);
    }
    if (fields.has(key)) throw new DeviceMappingError("WRONG_SHAPE", key, `${where} gives "${key}" twice: keep one`);
    fields.set(key, value);
  }
  const text = (key: string): string => {
    const value = fields.get(key);
    if (value === undefined) throw new DeviceMappingError("WRONG_SHAPE", key, `${where} has no "${key}"; each item must be ${shape}`);
    if (value.kind !== "string") {
      throw new DeviceMappingError("NON_STRING_VALUE", key, `"${key}" of ${where} is ${KIND_NAMES[value.kind]}; it must be a string`);
    }
    return value.value;
  };
  const recovery = text(RECOVERY);
  const local = text(LOCAL);
  const context = `${recovery}: ${local}`;
  return entry(checkName(recovery, "recovery", context), checkName(local, "local", context));
}

function checkDuplicates(entries: MappingEntry[]): void {
  const seen = new Set<string>();
  for (const e of entries) {
    const name = e.recoveryInstanceDeviceName;
    if (seen.has(name)) {
      throw new DeviceMappingError("DUPLICATE_RECOVERY_DEVICE", name, `the recovery device ${quote(name)} is mapped more than once: keep one pair for it`);
    }
    seen.add(name);
  }
}
