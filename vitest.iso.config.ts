import { defineConfig } from "vitest/config";

// The live ISO's boot test, on its own after the rest of the suite: two QEMU boots under TCG take
// a core each for minutes, and must never run beside each other or beside the other tests.
export default defineConfig({
  test: {
    include: ["test/iso/iso-boot.test.ts"],
    fileParallelism: false,
    testTimeout: 10 * 60_000,
    hookTimeout: 20 * 60_000,
  },
});
