import { describe, expect, it } from "vitest";
import { BatchLayout } from "../../src/replication/batches.js";

describe("batch layout", () => {
  it.each([
    [1, 256],
    [255, 256],
    [256, 256],
    [257, 256],
    [1000, 256],
    [4096, 256],
    [4097, 256],
    [100, 16],
    [5, 4],
  ])("%i leaves in batches of %i: the batches tile the volume and every leaf finds its own", (leaves, batchLeaves) => {
    const layout = new BatchLayout(leaves, batchLeaves);
    const firsts = [...layout.firsts()];
    let next = 0;
    for (const first of firsts) {
      expect(first).toBe(next);
      const length = layout.length(first);
      expect(length).toBeGreaterThan(0);
      expect(length).toBeLessThanOrEqual(batchLeaves);
      for (let leaf = first; leaf < first + length; leaf += 1) expect(layout.start(leaf)).toBe(first);
      next = first + length;
    }
    expect(next).toBe(leaves);
  });

  it("ramps up over the first full batch and down over the last", () => {
    const layout = new BatchLayout(1024, 256);
    expect([...layout.firsts()].map((f) => layout.length(f))).toEqual([16, 16, 32, 64, 128, 256, 256, 128, 64, 32, 16, 16]);
  });
});
