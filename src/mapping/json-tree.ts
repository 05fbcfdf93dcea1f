/*
 * JSON as written, not as a JavaScript object: objects keep every member in text order, duplicates
 * included, as [key, value] pairs. JSON.parse would drop a repeated key silently, reorder keys that
 * look like integers ("10" before "2") and treat "__proto__" specially in later code; a mapping
 * must report the first, round-trip the second and never touch any prototype.
 *
 * Invariant: readJsonTree is only called on text JSON.parse has accepted, so the scanner below can
 * trust the grammar and stays small. It is iterative (an explicit stack), so nesting depth is
 * bounded by the input size cap, not by the call stack. Strings are decoded by JSON.parse itself.
 */

export type JsonNode =
  | { kind: "string"; value: string }
  | { kind: "number" | "boolean" | "null"; raw: string }
  | { kind: "array"; items: JsonNode[] }
  | { kind: "object"; members: [string, JsonNode][] };

const STRING = /"(?:[^"\\]|\\.)*"/y;
const SCALAR = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
const SPACE = /[ \t\n\r]*/y;

type Open = { node: Extract<JsonNode, { kind: "array" | "object" }>; key: string | null };

/** The tree of a text JSON.parse accepted. */
export function readJsonTree(text: string): JsonNode {
  let at = 0;
  const stack: Open[] = [];
  let root: JsonNode | null = null;

  const skip = (): void => {
    SPACE.lastIndex = at;
    SPACE.exec(text);
    at = SPACE.lastIndex;
  };
  const match = (re: RegExp): string => {
    re.lastIndex = at;
    const m = re.exec(text);
    if (m === null) throw new SyntaxError(`unexpected JSON at ${at}`);
    at = re.lastIndex;
    return m[0];
  };
  const place = (node: JsonNode): void => {
    const top = stack[stack.length - 1];
    if (top === undefined) root = node;
    else if (top.node.kind === "array") top.node.items.push(node);
    else top.node.members.push([top.key ?? "", node]);
  };

  for (;;) {
    skip();
    const top = stack[stack.length - 1];
    const c = text[at];
    if (c === "," || c === ":") {
      at++;
      continue;
    }
    if (c === "]" || c === "}") {
      at++;
      stack.pop();
      if (stack.length === 0) break;
      continue;
    }
    // In an object, a string before ':' is a key.
    if (top !== undefined && top.node.kind === "object" && top.key === null) {
      top.key = JSON.parse(match(STRING)) as string;
      continue;
    }
    let node: JsonNode;
    let opens = false;
    if (c === "[") {
      at++;
      node = { kind: "array", items: [] };
      opens = true;
    } else if (c === "{") {
      at++;
      node = { kind: "object", members: [] };
      opens = true;
    } else if (c === '"') {
      node = { kind: "string", value: JSON.parse(match(STRING)) as string };
    } else {
      const raw = match(SCALAR);
      node = { kind: raw === "null" ? "null" : raw === "true" || raw === "false" ? "boolean" : "number", raw };
    }
    place(node);
    if (top !== undefined && top.node.kind === "object") top.key = null;
    if (opens) stack.push({ node: node as Open["node"], key: null });
    else if (stack.length === 0) break;
  }
  if (root === null) throw new SyntaxError("empty JSON");
  return root;
}
