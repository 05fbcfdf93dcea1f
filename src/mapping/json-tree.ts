/*
 * JSON as written, not as a JavaScript object: objects keep every member in text order, duplicates
 * included, as [key, value] pairs. JSON.parse would drop a repeated key silently, reorder keys that
 * look like integers ("10" before "2") and treat "__proto__" specially in later code; a mapping
 * must report the first, round-trip the second and never touch any prototype.
 *
 * Invariant: readJsonTree is only called on text JSON.parse has accepted, so the scanner below can
 * trust the grammar and stays small. It is iterative (an explicit stack), so nesting depth is
 * bounded by the input size cap, not by the call stack; containers deeper than `maxDepth` are
 * stepped over by bracket counting and returned empty (`truncated: true`), since no mapping form
 * looks that deep. Strings are decoded by JSON.parse itself.
 */

export type JsonNode =
  | { kind: "string"; value: string }
  | { kind: "number" | "boolean" | "null"; raw: string }
  | { kind: "array"; items: JsonNode[]; truncated?: true }
  | { kind: "object"; members: [string, JsonNode][]; truncated?: true };

type Container = Extract<JsonNode, { kind: "array" | "object" }>;
type Open = { node: Container; key: string | null };

const SCALAR = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const COMMA = 0x2c;
const COLON = 0x3a;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** The index just past the string starting at `at` (a '"'). */
function stringEnd(text: string, at: number): number {
  let i = at + 1;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) return i + 1;
    i += c === BACKSLASH ? 2 : 1;
  }
}

/** The index just past the container starting at `at`, without building it. */
function containerEnd(text: string, at: number): number {
  let depth = 0;
  let i = at;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i);
      continue;
    }
    if (c === OPEN_ARRAY || c === OPEN_OBJECT) depth++;
    else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
}

/** The tree of a text JSON.parse accepted, built down to `maxDepth` levels of containers. */
export function readJsonTree(text: string, maxDepth = Number.POSITIVE_INFINITY): JsonNode {
  let at = 0;
  const stack: Open[] = [];
  let root: JsonNode | undefined;

  const place = (node: JsonNode): void => {
    const top = stack[stack.length - 1];
    if (top === undefined) root = node;
    else if (top.node.kind === "array") top.node.items.push(node);
    else {
      top.node.members.push([top.key ?? "", node]);
      top.key = null;
    }
  };

  for (;;) {
    const c = text.charCodeAt(at);
    if (isSpace(c) || c === COMMA || c === COLON) {
      at++;
      continue;
    }
    if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      at++;
      stack.pop();
      if (stack.length === 0) break;
      continue;
    }
    const top = stack[stack.length - 1];
    if (c === QUOTE) {
      const end = stringEnd(text, at);
      const value = JSON.parse(text.slice(at, end)) as string;
      at = end;
      // In an object, a string where a key is due is the key.
      if (top !== undefined && top.node.kind === "object" && top.key === null) top.key = value;
      else place({ kind: "string", value });
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      const node: Container = c === OPEN_ARRAY ? { kind: "array", items: [] } : { kind: "object", members: [] };
      place(node);
      if (stack.length >= maxDepth) {
        node.truncated = true;
        at = containerEnd(text, at);
      } else {
        at++;
        stack.push({ node, key: null });
        continue;
      }
    } else {
      SCALAR.lastIndex = at;
      const m = SCALAR.exec(text);
      if (m === null) throw new SyntaxError(`unexpected JSON at ${at}`);
      at = SCALAR.lastIndex;
      const raw = m[0];
      place({ kind: raw === "null" ? "null" : raw === "true" || raw === "false" ? "boolean" : "number", raw });
    }
    if (stack.length === 0) break;
  }
  if (root === undefined) throw new SyntaxError("empty JSON");
  return root;
}
