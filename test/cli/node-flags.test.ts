import { execFile } from "node:child_process";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const repo = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);
const launcher = join(repo, "bin", "failback-client");

/** The Node flags of a launcher's `exec ... node FLAGS "...failback-client.js"` line. */
function flagsOf(path: string): string {
  const m = /^exec \S*node (.*?) "?\S*failback-client\.js"? "\$@"$/m.exec(readFileSync(path, "utf8"));
  if (!m) throw new Error(`no exec line in ${path}`);
  return m[1]!;
}

describe("the client's launchers", () => {
  it("start the built client with Node's flags, also through a symlink as npm installs it", async () => {
    const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string; bin: Record<string, string> };
    expect(pkg.bin["failback-client"]).toBe("bin/failback-client");
    const dir = await mkdtemp(join(tmpdir(), "launcher-"));
    try {
      await symlink(launcher, join(dir, "failback-client"));
      const program = "console.log(JSON.stringify(process.execArgv))";
      for (const path of [launcher, join(dir, "failback-client")]) {
        const { stdout } = await run(path, ["--version"], { env: { ...process.env, PATH: `${join(process.execPath, "..")}:${process.env.PATH ?? ""}` } });
        expect(stdout.trim()).toBe(pkg.version);
      }
      // The flags reach Node: the same exec line, with a program that prints them.
      const { stdout } = await run("sh", ["-c", `exec node ${flagsOf(launcher)} -e '${program}'`]);
      const flags = flagsOf(launcher).split(" ");
      expect((JSON.parse(stdout) as string[]).slice(0, flags.length)).toEqual(flags);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("are the same on the ISO", () => {
    expect(flagsOf(launcher)).not.toBe("");
    expect(flagsOf(join(repo, "iso-build", "overlay", "usr", "local", "bin", "failback-client"))).toBe(flagsOf(launcher));
  });
});
