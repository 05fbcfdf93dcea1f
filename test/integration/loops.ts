/*
 * Real loop devices as the local disks of a failback (root only), with a system root whose sys
 * and proc are the real ones and whose dev/disk/by-* tree is built here (no udev in the test
 * machines): what failback-client --system-root reads. Detach everything in release().
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const canUseLoops = (() => {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync("losetup", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

export interface LoopDisk {
  device: string;
  byPath: string;
  byId: string;
  byUuid: string;
}

export interface LoopMachine {
  root: string;
  disks: LoopDisk[];
  release(): Promise<void>;
}

export async function attachLoopMachine(sizes: number[], tag: string): Promise<LoopMachine> {
  const dir = await mkdtemp(join(tmpdir(), "loop-machine-"));
  const disks: LoopDisk[] = [];
  const release = async () => {
    for (const d of disks) {
      try {
        execFileSync("losetup", ["-d", d.device], { stdio: "ignore" });
      } catch {
        // already detached
      }
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const root = join(dir, "root");
    for (const scheme of ["path", "id", "uuid"]) await mkdir(join(root, "dev", "disk", `by-${scheme}`), { recursive: true });
    await symlink("/sys", join(root, "sys"));
    await symlink("/proc", join(root, "proc"));
    for (const [i, size] of sizes.entries()) {
      const image = join(dir, `disk${i}.img`);
      await writeFile(image, "");
      await truncate(image, size);
      const device = execFileSync("losetup", ["--find", "--show", image], { encoding: "utf8" }).trim();
      const disk = {
        device,
        byPath: `pci-0000:00:1${i}.0-scsi-0:0:${tag}:0`,
        byId: `scsi-0QEMU_QEMU_HARDDISK_${tag}-${i}`,
        byUuid: `${tag.padStart(8, "0").slice(0, 8)}-0000-4000-8000-00000000000${i}`,
      };
      disks.push(disk);
      await symlink(device, join(root, "dev", "disk", "by-path", disk.byPath));
      await symlink(device, join(root, "dev", "disk", "by-id", disk.byId));
      await symlink(device, join(root, "dev", "disk", "by-uuid", disk.byUuid));
    }
    return { root, disks, release };
  } catch (error) {
    await release();
    throw error;
  }
}
