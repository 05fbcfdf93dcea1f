/*
 * Disks and files the kernel is already using, which nothing but sysfs and /proc/swaps reveals,
 * given as targets to the program (root, real loop devices, a real swap file): the loop driver
 * makes no holders/ entry and takes no exclusive claim on what backs a loop device, and the failback
 * ISO's "toram" entry unmounts the boot medium. Each run must end with exit 2 and one line naming
 * the reason, before anything is written. Everything attached, mounted or swapped on is released
 * even when a test fails.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { sha256File } from "../../src/cli/demo/volumes.js";
import { attachLoopMachine, canUseLoops } from "./loops.js";
import { baseWorld, FailbackWorld, MiB } from "./world.js";

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

describe.skipIf(!canUseLoops)("failback-client refuses disks and files in use", () => {
  let fw: FailbackWorld;
  let dir: string;
  // Undone in reverse order after each test: umount, swapoff, losetup -d, a machine's release.
  let undo: (() => Promise<void> | void)[] = [];
  const later = (step: () => Promise<void> | void) => undo.push(step);

  beforeAll(async () => {
    fw = await FailbackWorld.start(baseWorld());
    dir = await mkdtemp(join(tmpdir(), "disks-in-use-"));
  });
  afterEach(async () => {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch (error) {
        console.error("cleanup failed:", error);
      }
    }
    undo = [];
  });
  afterAll(async () => {
    await fw?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function image(name: string, bytes: number): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, "");
    await truncate(path, bytes);
    return path;
  }
  function attach(backing: string): string {
    const device = sh("losetup", ["--find", "--show", backing]);
    later(() => void sh("losetup", ["-d", device]));
    return device;
  }
  async function mountWithData(device: string, name: string): Promise<string> {
    sh("mkfs.ext4", ["-q", "-F", device]);
    const mountPoint = join(dir, name);
    await mkdir(mountPoint);
    sh("mount", [device, mountPoint]);
    later(() => void sh("umount", [mountPoint]));
    await writeFile(join(mountPoint, "precious.txt"), "the user's data\n");
    return mountPoint;
  }

  it("a disk under a mounted loop device (no holders/ entry, O_EXCL succeeds)", async () => {
    const lower = attach(await image("lower.img", 64 * MiB));
    const upper = attach(lower);
    const mountPoint = await mountWithData(upper, "mnt-upper");
    const before = await sha256File(lower);
    const run = await fw.runClient(fw.onceFlags(`/dev/xvda=${lower},/dev/xvdb=EXCLUDE`, ["--allow-loop"]));
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(`failback-client: ${lower} cannot receive a volume: backs ${basename(upper)} (mounted at ${mountPoint})`);
    expect(await sha256File(lower)).toBe(before);
    expect(await readFile(join(mountPoint, "precious.txt"), "utf8")).toBe("the user's data\n");
  });

  it("an image file backing a mounted loop device, without --allow-loop", async () => {
    const file = await image("backing.img", 64 * MiB);
    const device = attach(file);
    const mountPoint = await mountWithData(device, "mnt-backing");
    const before = await sha256File(file);
    const run = await fw.runClient(fw.onceFlags(`/dev/xvda=${file},/dev/xvdb=EXCLUDE`));
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(`failback-client: ${file} cannot receive a volume: backs ${basename(device)} (mounted at ${mountPoint})`);
    expect(await sha256File(file)).toBe(before);
  });

  it("an image file backing a loop device that is only attached", async () => {
    const file = await image("attached.img", 8 * MiB);
    const device = attach(file);
    const run = await fw.runClient(fw.onceFlags(`/dev/xvda=${file},/dev/xvdb=EXCLUDE`));
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(`failback-client: ${file} cannot receive a volume: backs ${basename(device)}`);
  });

  it("an active swap file: refused before the plan, not an I/O error after it", async () => {
    const file = join(dir, "swapfile");
    await writeFile(file, Buffer.alloc(16 * MiB), { mode: 0o600 });
    sh("mkswap", ["-q", file]);
    sh("swapon", [file]);
    later(() => void sh("swapoff", [file]));
    const run = await fw.runClient(fw.onceFlags(`/dev/xvda=${file},/dev/xvdb=EXCLUDE`));
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(`failback-client: ${file} cannot receive a volume: used as swap`);
  });

  it("the live system's boot medium once unmounted, known by its label", async () => {
    const machine = await attachLoopMachine([8 * MiB, 4 * MiB], "72");
    later(() => machine.release());
    const medium = machine.disks[0]!.device;
    await mkdir(join(machine.root, "dev", "disk", "by-label"));
    await symlink(medium, join(machine.root, "dev", "disk", "by-label", "FAILBACK_LIVECD"));
    const run = await fw.runClient(fw.onceFlags(`/dev/xvda=${medium},/dev/xvdb=${machine.disks[1]!.device}`, ["--allow-loop", "--system-root", machine.root]));
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(`failback-client: ${medium} cannot receive a volume: it holds the live system's boot medium (labelled FAILBACK_LIVECD)`);
  });
});
