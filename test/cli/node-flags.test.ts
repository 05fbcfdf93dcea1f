import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const repo = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);

/** The first line of the client's source, as the kernel reads a `#!` line: program and one argument. */
function shebang(): { program: string; argument: string } {
  const first = readFileSync(join(repo, "src", "cli", "failback-client.ts"), "utf8").split("\n", 1)[0]!;
  const m = /^#!(\S+) (.+)$/.exec(first);
  if (!m) throw new Error(`no #! line with an argument: ${first}`);
  return { program: m[1]!, argument: m[2]! };
}

describe("the client's Node flags", () => {
  it("start the built client through its #! line as the kernel would (env -S)", async () => {
    const { program, argument } = shebang();
    const { stdout } = await run(program, [argument, join(repo, "dist", "cli", "failback-client.js"), "--version"]);
    const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string };
    expect(stdout.trim()).toBe(pkg.version);
  });

  it("are the same in the ISO's launcher", () => {
    const flags = shebang().argument.replace(/^-S node\s*/, "");
    expect(flags).not.toBe("");
    const launcher = readFileSync(join(repo, "iso-build", "overlay", "usr", "local", "bin", "failback-client"), "utf8");
    expect(launcher).toContain(`exec /usr/local/bin/node ${flags} /opt/failback-client/dist/cli/failback-client.js "$@"`);
  });
});
