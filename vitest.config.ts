import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The ISO boot test runs on its own (vitest.iso.config.ts), never beside these.
    exclude: ["test/iso/iso-boot.test.ts", "**/node_modules/**"],
    // Integration tests start real processes, loop devices and QEMU; give them room but keep every
    // test bounded so a hang fails instead of stalling CI.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: running every file at once makes process-heavy tests starve each other.
    maxWorkers: 2,
  },
});
