import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { type JsonNode, readJsonTree } from "../../src/mapping/json-tree.js";

/** The tree as the value JSON.parse would build (own data properties, as JSON.parse defines them). */
function toValue(node: JsonNode): unknown {
  switch (node.kind) {
    case "string":
      return node.value;
    case "number":
      return Number(node.raw);
    case "boolean":
      return node.raw === "true";
    case "null":
      return null;
    case "array":
      return node.items.map(toValue);
    case "object": {
      const out: Record<string, unknown> = {};
      for (const [k, v] of node.members) Object.defineProperty(out, k, { value: toValue(v), enumerable: true, writable: true, configurable: true });
      return out;
    }
  }
}

describe("readJsonTree", () => {
  test("agrees with JSON.parse on arbitrary JSON, compact and indented", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 1, "\t", " \r\n "), (value, indent) => {
        const text = JSON.stringify(value, null, indent as string | number | undefined);
        expect(toValue(readJsonTree(text))).toEqual(JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });

  test("keeps members in text order, repeats included, __proto__ as a plain key", () => {
    const tree = readJsonTree('{"10":1,"2":2,"__proto__":3,"2":4}');
    expect(tree.kind === "object" && tree.members.map(([k]) => k)).toEqual(["10", "2", "__proto__", "2"]);
  });

  test("steps over containers deeper than maxDepth, strings with brackets included", () => {
    const tree = readJsonTree('[{"a":["]\\"[",{"b":"}"}]},"x"]', 2);
    expect(tree).toEqual({
      kind: "array",
      items: [{ kind: "object", members: [["a", { kind: "array", items: [], truncated: true }]] }, { kind: "string", value: "x" }],
    });
  });

  test("a scalar at the root", () => {
    expect(readJsonTree(' "a" ')).toEqual({ kind: "string", value: "a" });
    expect(readJsonTree("-1.5e3")).toEqual({ kind: "number", raw: "-1.5e3" });
  });
});
