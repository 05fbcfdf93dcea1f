/*
 * Another project's view of the library: a folder outside this repository whose node_modules holds
 * this package (a symlink, as `npm install ../failback-client` would make), importing
 * "failback-client/mapping" from plain ESM JavaScript run by node, and from TypeScript checked by
 * tsc against the published declaration files. Needs the build output (npm test builds first);
 * builds it when missing or older than the sources.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

const run = promisify(execFile);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const tsc = join(repo, "node_modules/typescript/bin/tsc");
let consumer = "";

async function mtime(path: string): Promise<number> {
  return (await stat(path).catch(() => null))?.mtimeMs ?? 0;
}

/** Builds dist/ when dist/mapping is missing or older than src/mapping. */
async function ensureBuilt(): Promise<void> {
  const built = await mtime(join(repo, "dist/mapping/index.js"));
  const sources = (await readdir(join(repo, "src/mapping"))).filter((f) => f.endsWith(".ts"));
  const newest = Math.max(...(await Promise.all(sources.map((f) => mtime(join(repo, "src/mapping", f))))));
  if (built >= newest) return;
  // Other folders' errors do not stop tsc from emitting dist/mapping; the check below is what counts.
  await run(process.execPath, [tsc, "-p", join(repo, "tsconfig.build.json")], { cwd: repo, timeout: 120_000 }).catch(() => undefined);
  expect(await mtime(join(repo, "dist/mapping/index.js"))).toBeGreaterThanOrEqual(newest);
}

beforeAll(async () => {
  await ensureBuilt();
  consumer = await mkdtemp(join(tmpdir(), "mapping-consumer-"));
  await writeFile(join(consumer, "package.json"), JSON.stringify({ name: "mapping-consumer", private: true, type: "module", dependencies: { "failback-client": `file:${repo}` } }));
  await run("mkdir", ["-p", join(consumer, "node_modules")]);
  await symlink(repo, join(consumer, "node_modules/failback-client"), "dir");
}, 150_000);

afterAll(async () => {
  if (consumer) await rm(consumer, { recursive: true, force: true });
});

async function node(script: string): Promise<{ stdout: string; stderr: string; code: number }> {
  const file = join(consumer, `script-${Math.random().toString(36).slice(2)}.mjs`);
  await writeFile(file, script);
  try {
    const { stdout, stderr } = await run(process.execPath, [file], { cwd: consumer, timeout: 20_000 });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? "", stderr: e.stderr ?? "", code: typeof e.code === "number" ? e.code : -1 };
  }
}

describe("failback-client/mapping from another project", () => {
  test("an ESM script imports and uses the library", async () => {
    const out = await node(`
      import { parseDeviceMapping, formatDeviceMapping, fitsVolume, DeviceMappingError, VALUE_FORMATS, EXCLUDE } from "failback-client/mapping";
      const entries = parseDeviceMapping('ALL="/dev/xvda=pci-0000:00:10.0-scsi-0:0:0:0,/dev/xvdb:exclude"');
      let code = null;
      try { parseDeviceMapping("a=b,,c=d"); } catch (e) { code = e instanceof DeviceMappingError ? e.code : "other"; }
      console.log(JSON.stringify({ entries, drs: formatDeviceMapping(entries, "drs"), fit: fitsVolume(9.75 * 2 ** 30, 10 * 2 ** 30), code, formats: VALUE_FORMATS, EXCLUDE }));
    `);
    expect(out.stderr).toBe("");
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({
      entries: [
        { recoveryInstanceDeviceName: "/dev/xvda", failbackClientDeviceName: "pci-0000:00:10.0-scsi-0:0:0:0" },
        { recoveryInstanceDeviceName: "/dev/xvdb", failbackClientDeviceName: "EXCLUDE" },
      ],
      drs: '[{"recoveryInstanceDeviceName":"/dev/xvda","failbackClientDeviceName":"pci-0000:00:10.0-scsi-0:0:0:0"},{"recoveryInstanceDeviceName":"/dev/xvdb","failbackClientDeviceName":"EXCLUDE"}]',
      fit: "fractional",
      code: "EMPTY_PAIR",
      formats: ["dev-name", "by-path", "by-id", "by-uuid", "all-strict"],
      EXCLUDE: "EXCLUDE",
    });
  });

  test("the package root exports the same library", async () => {
    const out = await node(`
      import * as root from "failback-client";
      import * as mapping from "failback-client/mapping";
      console.log(JSON.stringify([root.parseDeviceMapping === mapping.parseDeviceMapping, Object.keys(mapping).sort()]));
    `);
    expect(out.code).toBe(0);
    const [same, keys] = JSON.parse(out.stdout) as [boolean, string[]];
    expect(same).toBe(true);
    expect(keys).toEqual(
      expect.arrayContaining(["DeviceMappingError", "EXCLUDE", "VALUE_FORMATS", "autoMapDevices", "fitsVolume", "formatDeviceMapping", "isValueFormat", "parseDeviceMapping", "resolveDeviceMapping"]),
    );
  });

  test("internal files are not reachable", async () => {
    const out = await node(`import "failback-client/dist/mapping/parse.js";`);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain("ERR_PACKAGE_PATH_NOT_EXPORTED");
  });

  test("TypeScript sees the declaration files: a correct consumer checks, a wrong one fails", async () => {
    await writeFile(
      join(consumer, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", strict: true, noEmit: true, types: [], skipLibCheck: false }, include: ["*.ts"] }),
    );
    await writeFile(
      join(consumer, "good.ts"),
      `import { parseDeviceMapping, resolveDeviceMapping, DeviceMappingError, type MappingEntry, type ResolvedMapping, type ValueFormat } from "failback-client/mapping";
const entries: MappingEntry[] = parseDeviceMapping("/dev/xvda=/dev/sda");
const format: ValueFormat = "by-path";
export const r: ResolvedMapping[] = resolveDeviceMapping(entries, { valueFormat: format, recoveryDisks: [{ deviceName: "/dev/xvda", bytes: 1 }], localDisks: [] });
export const code: string = new DeviceMappingError("X", "t", "m").code;
`,
    );
    const good = await run(process.execPath, [tsc, "-p", consumer], { cwd: consumer, timeout: 60_000 }).then(
      () => "",
      (e: { stdout?: string }) => e.stdout ?? "failed",
    );
    expect(good).toBe("");

    await writeFile(join(consumer, "bad.ts"), `import { parseDeviceMapping, type ValueFormat } from "failback-client/mapping";\nexport const n: number = parseDeviceMapping("a=b");\nexport const f: ValueFormat = "by-label";\n`);
    const bad = await run(process.execPath, [tsc, "-p", consumer], { cwd: consumer, timeout: 60_000 }).then(
      () => "",
      (e: { stdout?: string }) => e.stdout ?? "failed",
    );
    expect(bad).toContain("bad.ts(2,");
    expect(bad).toContain("bad.ts(3,");
    expect(bad).not.toContain("good.ts");
  }, 90_000);
});
