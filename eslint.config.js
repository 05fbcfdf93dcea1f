// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

// Imports flow one way (DESIGN.md, "Layout and boundaries"): cli may use everything; drs, devices
// and replication may use mapping's types at most and never each other; mapping imports nothing of
// ours and no I/O. The rules below enforce that instead of hoping for it.
const nodeIo = ["fs", "node:fs", "fs/promises", "node:fs/promises", "net", "node:net", "tls", "node:tls",
  "child_process", "node:child_process", "http", "node:http", "https", "node:https", "ws", "inquirer",
  "@inquirer/*", "@aws-sdk/*", "systeminformation", "commander"];

/** @param {string[]} folders @param {string} why */
const forbid = (folders, why) => folders.map((f) => ({ group: [`**/${f}/*`, `../${f}/*`, `../../src/${f}/*`], message: why }));

export default tseslint.config(
  { ignores: ["dist/", "dist-check/", "dist-bench/", "node_modules/", "coverage/", "iso-build/out/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["src/mapping/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        paths: nodeIo,
        patterns: forbid(["devices", "drs", "replication", "emulator", "cli"], "src/mapping is pure and imports nothing of ours."),
      }],
    },
  },
  {
    files: ["src/devices/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: forbid(["drs", "replication", "emulator", "cli"], "src/devices may use only src/mapping's types."),
      }],
    },
  },
  {
    files: ["src/drs/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: forbid(["devices", "replication", "emulator", "cli"], "src/drs may use only src/mapping's types."),
      }],
    },
  },
  {
    files: ["src/replication/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: forbid(["devices", "drs", "emulator", "cli"], "src/replication may use only src/mapping's types."),
      }],
    },
  },
  {
    files: ["src/emulator/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: forbid(["devices", "drs", "replication", "cli"], "the emulator stands in for AWS and shares no code with the client."),
      }],
    },
  },
);
