/*
 * The agent serving a block device whose file system is mounted and written to, as on a running
 * Recovery Instance (root: a real loop device and ext4). A file system writes its data past the
 * block device's page cache, so a buffered re-read of the device can return the old block; a
 * second pass must still see the change, and end byte-identical to the device.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadOrCreateIdentity, replicate, startAgent, type TlsIdentity } from "../../src/replication/index.js";

const MiB = 2 ** 20;
const canMount = (() => {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync("sh", ["-c", "command -v losetup && command -v mkfs.ext4 && command -v blockdev"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!canMount)("a source whose file system is mounted and written to (root)", () => {
  let dir: string;
  let loop = "";
  let mounted = false;
  let agentId: TlsIdentity;
  let clientId: TlsIdentity;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mounted-source-"));
    [agentId, clientId] = await Promise.all([loadOrCreateIdentity(join(dir, "agent"), "agent"), loadOrCreateIdentity(join(dir, "client"), "client")]);
    const backing = join(dir, "recovery.img");
    await writeFile(backing, "");
    await truncate(backing, 32 * MiB);
    loop = execFileSync("losetup", ["--find", "--show", backing], { encoding: "utf8" }).trim();
    execFileSync("mkfs.ext4", ["-q", "-b", "4096", loop]);
    execFileSync("mkdir", ["-p", join(dir, "mnt")]);
    execFileSync("mount", [loop, join(dir, "mnt")]);
    mounted = true;
  });
  afterAll(async () => {
    if (mounted) execFileSync("umount", [join(dir, "mnt")]);
    if (loop) execFileSync("losetup", ["-d", loop]);
    await rm(dir, { recursive: true, force: true });
  });

  /** An agent on 127.0.0.1 serving the loop device, paired with this test's client. */
  const agentOnLoop = () =>
    startAgent({ host: "127.0.0.1", port: 0, volumes: [{ deviceName: "/dev/xvda", path: loop }], identity: agentId, authorize: (fp) => fp === clientId.fingerprint });

  it("a second pass sends what the file system wrote after the first, and ends identical", async () => {
    const file = join(dir, "mnt", "data.bin");
    await writeFile(file, Buffer.alloc(4 * MiB, 0x11));
    execFileSync("sync");
    const target = join(dir, "local.img");
    await writeFile(target, "");
    await truncate(target, 32 * MiB);

    const agent = await agentOnLoop();
    const pass = () =>
      replicate({
        host: "127.0.0.1",
        port: agent.port,
        identity: clientId,
        agentFingerprint: agentId.fingerprint,
        volumes: [{ recoveryDevice: "/dev/xvda", localPath: target, localBytes: 32 * MiB, recoveryBytes: 32 * MiB }],
        mode: "once",
      });
    try {
      await pass();
      // The first pass read the whole device through its page cache; now the file system
      // overwrites the file's blocks, which the device's cache does not see.
      await writeFile(file, Buffer.alloc(4 * MiB, 0x22));
      execFileSync("sync");
      const second = await pass();
      expect(second.sentBytes).toBeGreaterThanOrEqual(4 * MiB);
      // The truth is the loop device's backing file, which the loop driver writes through.
      const sha = async (path: string) => createHash("sha256").update(await readFile(path)).digest("hex");
      expect(await sha(target)).toBe(await sha(join(dir, "recovery.img")));
    } finally {
      await agent.close();
    }
  });

  it("in continuous replication, a write through the file system between passes is found and sent", async () => {
    const file = join(dir, "mnt", "live.bin");
    const target = join(dir, "live-local.img");
    await writeFile(target, "");
    await truncate(target, 32 * MiB);
    const agent = await agentOnLoop();
    const finish = new AbortController();
    let step = Promise.resolve();
    try {
      await replicate({
        host: "127.0.0.1",
        port: agent.port,
        identity: clientId,
        agentFingerprint: agentId.fingerprint,
        volumes: [{ recoveryDevice: "/dev/xvda", localPath: target, localBytes: 32 * MiB, recoveryBytes: 32 * MiB }],
        mode: "continuous",
        finishSignal: finish.signal,
        intervalMs: 50,
        onEvent: (event) => {
          if (event.type !== "pass-complete") return;
          const pass = event.pass;
          step = step.then(async () => {
            // Passes 2 and 3 see an unchanged device; then an application writes.
            if (pass === 3) {
              await writeFile(file, Buffer.alloc(3 * MiB, 0x33));
              execFileSync("sync");
            }
            if (pass >= 5) finish.abort();
          });
        },
      });
      await step;
      const sha = async (path: string) => createHash("sha256").update(await readFile(path)).digest("hex");
      expect(await sha(target)).toBe(await sha(join(dir, "recovery.img")));
    } finally {
      await agent.close();
    }
  });
});
