import { describe, expect, it } from "vitest";
import { renderTable, type Figure } from "../../bench/report.js";

describe("bench table", () => {
  const figure = (id: number, floor?: string): Figure => ({ id, title: `f${id}`, goal: "g", pass: false, engine: "e", reference: "r", ratio: "x",
    notes: [], data: {}, ...(floor === undefined ? {} : { floor }) });

  it("shows a floor column only when a figure has a floor", () => {
    const withFloor = renderTable([figure(1, "1.37 s: at best 0.51x"), figure(2)]).split("\n");
    expect(withFloor[0]).toContain("floor (same run)");
    expect(withFloor[2]).toContain("1.37 s: at best 0.51x");
    expect(withFloor[3]).toMatch(/\| - +\|/);
    expect(renderTable([figure(2), figure(4)])).not.toContain("floor");
  });
});
