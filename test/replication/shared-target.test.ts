/*
 * Two volumes into one local disk under two names: the engine refuses before it opens anything,
 * whatever the caller checked before (the CLI refuses it as a mapping error, exit 2).
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { replicateOver } from "../../src/replication/index.js";
import { canUseLoops } from "../integration/loops.js";

const MiB = 2 ** 20;
let dir = "";
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("a local target given twice", () => {
  it.each([
    ["through a symbolic link", (file: string) => `${file}.link`],
    ["as ./name", (file: string) => file.replace(/\/target\.img$/, "/./target.img")],
  ])("%s is refused with TARGET_USED_TWICE before any connection or write", async (_, other) => {
    dir = await mkdtemp(join(tmpdir(), "shared-target-"));
    const file = join(dir, "target.img");
    await writeFile(file, Buffer.alloc(MiB, 7));
    const second = other(file);
    if (second.endsWith(".link")) await symlink(file, second);
    let connections = 0;
    const connect = () => {
      connections += 1;
      throw new Error("no connection expected");
    };
    const volumes = [
      { recoveryDevice: "/dev/xvda", localPath: file, localBytes: MiB, recoveryBytes: MiB },
      { recoveryDevice: "/dev/xvdb", localPath: second, localBytes: MiB, recoveryBytes: MiB },
    ];
    await expect(replicateOver(connect, volumes, { address: "test", mode: "once" })).rejects.toMatchObject({
      code: "TARGET_USED_TWICE",
      message: `client: ${file} and ${second} are the same storage; each receives one volume, and nothing was written`,
    });
    expect(connections).toBe(0);
    expect((await readFile(file)).equals(Buffer.alloc(MiB, 7))).toBe(true);
  });

  it.skipIf(!canUseLoops)("as a loop device and the file behind it is refused the same way (root)", async () => {
    dir = await mkdtemp(join(tmpdir(), "shared-target-"));
    const file = join(dir, "target.img");
    await writeFile(file, Buffer.alloc(MiB, 7));
    const loop = execFileSync("losetup", ["--find", "--show", file], { encoding: "utf8" }).trim();
    try {
      const volumes = [
        { recoveryDevice: "/dev/xvda", localPath: loop, localBytes: MiB, recoveryBytes: MiB },
        { recoveryDevice: "/dev/xvdb", localPath: file, localBytes: MiB, recoveryBytes: MiB },
      ];
      await expect(replicateOver(() => Promise.reject(new Error("no connection expected")), volumes, { address: "test", mode: "once" })).rejects.toMatchObject({ code: "TARGET_USED_TWICE" });
      expect((await readFile(file)).equals(Buffer.alloc(MiB, 7))).toBe(true);
    } finally {
      execFileSync("losetup", ["-d", loop]);
    }
  });
});
