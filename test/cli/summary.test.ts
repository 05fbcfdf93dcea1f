import { describe, expect, it } from "vitest";
import { describeSummary } from "../../src/cli/steps/replicate.js";

const MiB = 2 ** 20;
const summary = { totalBytes: 10 * 1024 * MiB, sentBytes: 100 * MiB, skippedEqualBytes: 9 * 1024 * MiB, skippedZeroBytes: 92 * MiB, wireBytes: 0, wireBytesIn: 0, wireBytesOut: 0, mismatchesRepaired: 0, passes: 1 };

describe("the run's summary line", () => {
  it("says what was sent, equal and zero, and that it was verified", () => {
    expect(describeSummary(1, summary)).toBe("1 volume(s), 10.00 GiB; 100.0 MiB sent, 9.00 GiB already equal, 92.00 MiB zero; verified");
  });

  it("names the blocks the verification had to repair", () => {
    expect(describeSummary(2, { ...summary, mismatchesRepaired: 3 })).toMatch(/; verified, 3 mismatching block\(s\) repaired$/);
  });
});
