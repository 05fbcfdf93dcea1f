/*
 * Image files named in a dev-name mapping (steps/inventory.ts imageFileDisks): a file the kernel
 * already uses as a disk (a loop device's backing file, an active swap file) carries a refusal the
 * mapping library reports as NOT_A_TARGET. The fake machine's sysfs and /proc point at real files
 * in its own folder, so no root and no loop device are needed.
 */
import { mkdir, rename, rm, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imageFileDisks } from "../../src/cli/steps/inventory.js";
import { fileIdentity } from "../../src/devices/index.js";
import { DeviceMappingError, resolveDeviceMapping } from "../../src/mapping/index.js";
import { buildFakeMachine } from "../devices/fake-machine.js";

const MiB = 2 ** 20;
let root: string;
const image = (name: string) => join(root, "images", name);
const entries = (...files: string[]) => files.map((f, i) => ({ recoveryInstanceDeviceName: `/dev/xvd${"abcd"[i]}`, failbackClientDeviceName: f }));

beforeAll(async () => {
  // The images first, then the sysfs and /proc that name them, moved into the same root.
  root = await buildFakeMachine({ disks: [] });
  await mkdir(join(root, "images"));
  for (const name of ["mounted.img", "attached.img", "swap.img", "free.img"]) {
    await writeFile(image(name), "");
    await truncate(image(name), 8 * MiB);
  }
  // loop0 is known by backing_dev + backing_inode (kernels that have them); loop1 only by its path.
  const [major, minor, inode] = fileIdentity(await stat(image("mounted.img"), { bigint: true })).split(":");
  const machine = await buildFakeMachine({
    disks: [
      { name: "loop0", sectors: 16384, dev: "7:0", loop: { backingFile: "/somewhere/else/mounted.img (deleted)", backingDev: `${major}:${minor}`, backingInode: inode! } },
      { name: "loop1", sectors: 16384, dev: "7:1", loop: { backingFile: "/images/attached.img" } },
    ],
    mounts: [{ dev: "7:0", mountPoint: "/srv/data", fsType: "ext4", source: "/dev/loop0" }],
    swaps: ["/images/swap.img"],
  });
  for (const part of ["sys", "proc"]) {
    await rm(join(root, part), { recursive: true, force: true });
    await rename(join(machine, part), join(root, part));
  }
  await rm(machine, { recursive: true, force: true });
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe("imageFileDisks", () => {
  it.each([
    ["backs a mounted loop device (found by backing_dev and backing_inode)", "mounted.img", "backs loop0 (mounted at /srv/data)"],
    ["backs a loop device, mounted or not (found by backing_file)", "attached.img", "backs loop1"],
    ["is an active swap file", "swap.img", "used as swap"],
  ])("refuses a file that %s", async (_, name, refusal) => {
    const [disk] = await imageFileDisks(entries(image(name)), [], { root });
    expect(disk).toMatchObject({ name: image(name), bytes: 8 * MiB, refusal });
    const resolving = () => resolveDeviceMapping(entries(image(name)), { valueFormat: "dev-name", recoveryDisks: [{ deviceName: "/dev/xvda", bytes: 8 * MiB }], localDisks: [disk!] });
    expect(resolving).toThrow(DeviceMappingError);
    expect(resolving).toThrow(expect.objectContaining({ code: "NOT_A_TARGET", message: `${image(name)} cannot receive a volume: ${refusal}` }));
  });

  it("offers a file the kernel does not use", async () => {
    const [disk] = await imageFileDisks(entries(image("free.img")), [], { root });
    expect(disk).toEqual({ name: image("free.img"), bytes: 8 * MiB, byPath: [], byId: [], byUuid: [] });
  });
});
