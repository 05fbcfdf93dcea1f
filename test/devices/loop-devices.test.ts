/*
 * Real loop devices as real block devices (root only): sparse images of fractional and whole GiB
 * sizes, a by-path/by-id tree built by the test (no udev here), sizes and names read back exactly,
 * and a mounted one refused. Everything attached or mounted is released even when a test fails.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readInventory } from "../../src/devices/index.js";

const isRoot = process.getuid?.() === 0;
const canLoop = isRoot && (() => {
  try {
    execFileSync("losetup", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!canLoop)("readInventory on real loop devices (root)", () => {
  let dir: string;
  let root: string;
  const loops: string[] = [];
  let mountPoint: string | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "loop-inventory-"));
    const sizes = [1.75 * 2 ** 30, 2 ** 30];
    for (const [i, size] of sizes.entries()) {
      const image = join(dir, `disk${i}.img`);
      await writeFile(image, "");
      await truncate(image, size);
      loops.push(execFileSync("losetup", ["--find", "--show", image], { encoding: "utf8" }).trim());
    }
    root = join(dir, "root");
    await mkdir(join(root, "dev", "disk", "by-path"), { recursive: true });
    await mkdir(join(root, "dev", "disk", "by-id"), { recursive: true });
    await symlink("/sys", join(root, "sys"));
    await symlink("/proc", join(root, "proc"));
    for (const [i, loop] of loops.entries()) {
      await symlink(loop, join(root, "dev", "disk", "by-path", `pci-0000:00:1${i}.0-scsi-0:0:0:0`));
      await symlink(loop, join(root, "dev", "disk", "by-id", `scsi-test-disk-${i}`));
    }
    execFileSync("mkfs.ext4", ["-q", "-F", loops[1]!], { stdio: "ignore" });
    mountPoint = join(dir, "mnt");
    await mkdir(mountPoint);
    execFileSync("mount", [loops[1]!, mountPoint]);
  });

  afterAll(async () => {
    if (mountPoint) execFileSync("umount", [mountPoint], { stdio: "ignore" });
    for (const loop of loops) execFileSync("losetup", ["-d", loop], { stdio: "ignore" });
    await rm(dir, { recursive: true, force: true });
  });

  it("reads the fractional and whole GiB sizes and the test's names exactly", async () => {
    const disks = await readInventory({ root, allowLoop: true });
    const [a, b] = loops.map((loop) => disks.find((d) => d.name === loop));
    expect(a).toMatchObject({ kind: "loop", bytes: 1.75 * 2 ** 30, byPath: ["pci-0000:00:10.0-scsi-0:0:0:0"], byId: ["scsi-test-disk-0"], offered: true, refusals: [] });
    expect(b).toMatchObject({ bytes: 2 ** 30, byPath: ["pci-0000:00:11.0-scsi-0:0:0:0"], byId: ["scsi-test-disk-1"] });
  });

  it("refuses the mounted one, naming where it is mounted", async () => {
    const disks = await readInventory({ root, allowLoop: true });
    const mounted = disks.find((d) => d.name === loops[1]);
    expect(mounted?.refusals).toEqual([`mounted at ${mountPoint}`]);
  });

  it("does not offer loop devices unless allowed", async () => {
    const disks = await readInventory({ root });
    expect(disks.find((d) => d.name === loops[0])?.offered).toBe(false);
  });
});
