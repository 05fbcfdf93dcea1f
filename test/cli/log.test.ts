import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createLog } from "../../src/cli/log.js";

describe("log", () => {
  it("never writes a registered secret to the file or the console", async () => {
    const dir = await mkdtemp(join(tmpdir(), "log-"));
    try {
      const consoleLines: string[] = [];
      const log = createLog({ file: join(dir, "sub", "client.log"), console: true, consoleWrite: (l) => consoleLines.push(l), now: () => new Date(0) });
      log.addSecret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
      log.addSecret("session-token-value-123");
      log.addSecret("ab");
      log.error("signature failed for secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY and token session-token-value-123 (ab)");
      const file = await readFile(join(dir, "sub", "client.log"), "utf8");
      expect(file).toBe("1970-01-01T00:00:00.000Z ERROR signature failed for secret **** and token **** (ab)\n");
      expect(consoleLines).toEqual([file]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
