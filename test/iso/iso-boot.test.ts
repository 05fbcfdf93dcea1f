/*
 * The live ISO, built from this tree and booted for real: in BIOS and in UEFI mode under QEMU, with
 * two blank virtual disks. The guest sets a static address through start.sh (from the kernel command
 * line, as an unattended boot would), runs the client with --no-prompt --once against the DRS
 * emulator and a failback-agent on the host, fails back into the virtual disks and powers off. The
 * host then compares the virtual disks with the agent's volumes byte for byte. A third boot has no
 * client settings at all: the test answers the client's prompts on the serial console as a person
 * at the console would.
 *
 * Needs root (debootstrap, chroot) and the host tools .ci/run installs; run by `npm run test:iso`.
 * FAILBACK_ISO_RELEASE=1 builds and boots the release ISO (`build.sh --release`: xz, minutes more).
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseWorld, FailbackWorld, MiB, SECRET } from "../integration/world.js";
import { boot, missingTools, type Boot, type SerialConsole } from "./qemu.js";

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const missing = missingTools();
if (!isRoot || missing.length > 0) {
  console.warn(`iso boot test skipped: ${!isRoot ? "needs root" : `missing ${missing.join(", ")} (apt-get install qemu-system-x86 ovmf socat dosfstools mtools)`}`);
}

const AGENT = { host: "10.0.2.100", port: 1500 };
const DRS = { host: "10.0.2.101", port: 8080 };
const GUEST_IP = "10.0.2.20";
const BOOT_TIMEOUT_MS = 8 * 60_000;

let dir: string;
let iso: string;
let fw: FailbackWorld;
let buildSeconds = 0;

function hostPort(address: string): { host: string; port: number } {
  const url = new URL(address.includes("://") ? address : `tcp://${address}`);
  return { host: url.hostname, port: Number(url.port) };
}

/** A FAT image labelled FAILBACKCFG with the GRUB settings of an unattended boot. */
async function seedImage(path: string, kernelArgs: string, clientFlags: string): Promise<void> {
  const cfg = join(dir, "seed-grub.cfg");
  const lines = ["set timeout=0", 'set failback_console="console=ttyS0,115200n8"', `set failback_args='${kernelArgs}'`, `set failback_flags='${clientFlags}'`];
  await writeFile(cfg, lines.join("\n") + "\n");
  await rm(path, { force: true });
  await run("mkfs.vfat", ["-n", "FAILBACKCFG", "-C", path, "2048"]);
  await run("mmd", ["-i", path, "::/failback"]);
  await run("mcopy", ["-i", path, cfg, "::/failback/grub.cfg"]);
}

/** start.sh's own variables, exactly as the DRS Failback Client documents them. */
function kernelArgs(unattended: boolean): string {
  const world = fw.world;
  const drs = `http://${DRS.host}:${DRS.port}`;
  return [
    `IPADDR=${GUEST_IP}`, "NETMASK=255.255.255.0", "GATEWAY=10.0.2.2", "DNS=10.0.2.3", "CONFIG_NETWORK=1",
    // Unattended boots power off; at the console, success ejects the ISO and reboots (the default),
    // which ends QEMU too (-no-reboot).
    `AWS_STS_ENDPOINT=${drs}`, "ON_FAILURE=poweroff", ...(unattended ? ["ON_SUCCESS=poweroff"] : []),
    ...(unattended
      ? [
          `AWS_REGION=${world.region}`, `AWS_ACCESS_KEY=${world.accessKeyId}`, `AWS_SECRET_KEY=${world.secretAccessKey}`, `AWS_DRS_ENDPOINT=${drs}`,
          `RECOVERY_INSTANCE_ID=${world.recoveryInstanceId}`, "DEVICE_MAPPING=/dev/xvda=/dev/vda,/dev/xvdb=/dev/vdb", "NO_PROMPT=1",
        ]
      : []),
  ].join(" ");
}

/** Boots the ISO with two blank disks the size of the recovery volumes; the disks' paths and the boot. */
async function failbackBoot(firmware: "bios" | "uefi", medium: "cdrom" | "usb", unattended: boolean, interact?: (serial: SerialConsole) => Promise<void>) {
  const name = `${firmware}-${medium}-${unattended ? "unattended" : "interactive"}`;
  const disks = [join(dir, `${name}-vda.img`), join(dir, `${name}-vdb.img`)];
  for (const [i, disk] of disks.entries()) {
    await writeFile(disk, "");
    await truncate(disk, fw.world.volumes[i]!.bytes);
  }
  const seed = join(dir, `${name}-seed.img`);
  await seedImage(seed, kernelArgs(unattended), `--once --agent-address ${AGENT.host}:${AGENT.port}`);
  const result = await boot(
    {
      iso, firmware, medium, disks, seed, dir,
      timeoutMs: BOOT_TIMEOUT_MS,
      forwards: [
        { guest: AGENT, host: hostPort(fw.agentAddress) },
        { guest: DRS, host: hostPort(fw.emulator.address) },
      ],
    },
    interact,
  );
  return { disks, result };
}

async function expectFailedBack(disks: string[], result: Boot): Promise<void> {
  expect(result.interaction, shown(result)).toBeUndefined();
  expect(result.timedOut, shown(result)).toBe(false);
  expect(result.serial, shown(result)).toMatch(new RegExp(`Network: \\S+ ${GUEST_IP.replace(/\./g, "\\.")}/24 via 10\\.0\\.2\\.2, DNS 10\\.0\\.2\\.3 \\(static\\)`));
  expect(result.serial, shown(result)).toContain("First pass written, verified and flushed");
  expect(result.serial).not.toContain(SECRET);
  expect(await fw.sameAsRecovery(0, disks[0]!), shown(result)).toBe(true);
  expect(await fw.sameAsRecovery(1, disks[1]!), shown(result)).toBe(true);
}

/** The serial log for a failure message, with the test's secret taken out. */
function shown(b: Boot): string {
  return `QEMU ${b.timedOut ? "timed out and was ended" : `exited ${b.code}`} after ${Math.round(b.ms / 1000)} s; serial console:\n${b.serial.split(SECRET).join("<secret>").slice(-6000)}`;
}

describe.skipIf(!isRoot || missing.length > 0)("the failback live ISO", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "failback-iso-"));
    const started = Date.now();
    const release = process.env.FAILBACK_ISO_RELEASE === "1" ? ["--release"] : [];
    await run("bash", [resolve("iso-build/build.sh"), "--out", join(dir, "out"), ...release], { maxBuffer: 16 * MiB }).catch((error: { stderr?: string }) => {
      throw new Error(`iso-build/build.sh failed: ${error.stderr ?? String(error)}`);
    });
    buildSeconds = (Date.now() - started) / 1000;
    iso = join(dir, "out", "failback-livecd-64bit.iso");
    fw = await FailbackWorld.start(baseWorld({ volumes: [{ deviceName: "/dev/xvda", bytes: 40 * MiB }, { deviceName: "/dev/xvdb", bytes: 24 * MiB }] }));
  }, 20 * 60_000);

  afterAll(async () => {
    await fw?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("is built with its .sha512, which matches", async () => {
    const { stdout } = await run("sha512sum", ["-c", "failback-livecd-64bit.iso.sha512"], { cwd: join(dir, "out") });
    expect(stdout).toContain("failback-livecd-64bit.iso: OK");
    const size = (await stat(iso)).size;
    console.log(`iso: ${(size / MiB).toFixed(0)} MiB, built in ${buildSeconds.toFixed(0)} s`);
  });

  // BIOS from a CD, UEFI from the same image written to a USB stick: both sides of the hybrid.
  const boots = [
    { firmware: "bios", medium: "cdrom" },
    { firmware: "uefi", medium: "usb" },
  ] as const;
  for (const { firmware, medium } of boots) {
    it(`boots in ${firmware.toUpperCase()} mode from a ${medium === "usb" ? "USB stick" : "CD"}, fails back into the virtual disks with --no-prompt --once, and powers off`, async () => {
      const { disks, result } = await failbackBoot(firmware, medium, true);
      console.log(`${firmware} (${medium}): start.sh after ${((result.msToStart ?? NaN) / 1000).toFixed(0)} s, powered off after ${(result.ms / 1000).toFixed(0)} s`);
      await expectFailedBack(disks, result);
    }, BOOT_TIMEOUT_MS + 60_000);
  }

  it("at the serial console, a person answers the client's prompts; the failback completes, the ISO is ejected and the server reboots", async () => {
    let msToPrompt = NaN;
    const started = Date.now();
    const { disks, result } = await failbackBoot("bios", "cdrom", false, async (serial) => {
      await serial.waitFor(/AWS access key id/i, BOOT_TIMEOUT_MS);
      msToPrompt = Date.now() - started;
      serial.type(fw.world.accessKeyId);
      await serial.waitFor(/secret access key/i);
      serial.type(fw.world.secretAccessKey);
      await serial.waitFor(/session token/i);
      serial.type("");
      await serial.waitFor(/AWS region/i);
      serial.type(fw.world.region);
      await serial.waitFor(/Custom DRS endpoint/i);
      serial.type(`http://${DRS.host}:${DRS.port}`);
      await serial.waitFor(/Choose a Recovery Instance/);
      serial.type("1");
      // Each recovery volume has exactly one local disk of its size (the seed disk is smaller),
      // so the client maps them itself and shows the plan, which the person approves.
      await serial.waitFor(/\/dev\/xvda \(40\.00 MiB\) -> \/dev\/vda \(40\.00 MiB\)\s+\/dev\/xvdb \(24\.00 MiB\) -> \/dev\/vdb/);
      // An 80-column console may wrap the question.
      await serial.waitFor(/Overwrite\s+everything\s+on\s+\/dev\/vda,\s+\/dev\/vdb\s+and\s+start\s+the\s+failback\?\s+\(yes\/no\)/);
      serial.type("yes");
    });
    console.log(`interactive (bios, cdrom): the client's first prompt after ${(msToPrompt / 1000).toFixed(0)} s, rebooted after ${(result.ms / 1000).toFixed(0)} s`);
    await expectFailedBack(disks, result);
    expect(result.serial, shown(result)).toContain("Rebooting into the restored system in 10 s");
    expect(result.trayOpened, shown(result)).toBe(true);
    // The serial console got a size, so the progress is drawn whole, not cut after the bar.
    expect(result.serial, shown(result)).toMatch(/\/dev\/xvda +\[[#-]{24}\] .*scanned [\d.]+ MiB\/40\.00 MiB/);
  }, BOOT_TIMEOUT_MS + 60_000);
});
