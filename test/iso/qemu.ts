/*
 * Booting the live ISO in QEMU for its test: BIOS (SeaBIOS) or UEFI (OVMF), under TCG with one
 * vCPU. The paravirtual /dev/kvm of these machines cannot run a stock kernel or firmware, so KVM
 * is never asked for. The guest's network is QEMU's user network with restrict=on: it reaches only
 * the services forwarded to the host's loopback, one guestfwd each.
 */
import { spawn, spawnSync } from "node:child_process";
import { copyFile, readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { stripVTControlCharacters } from "node:util";

export const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
export const OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd";

export interface Forward {
  /** The address the guest connects to, in QEMU's 10.0.2.0/24. */
  guest: { host: string; port: number };
  /** Where the connection goes on the host. */
  host: { host: string; port: number };
}

export interface BootOptions {
  iso: string;
  firmware: "bios" | "uefi";
  /** The ISO as a CD, or as a USB stick it was written to (the hybrid image's disk side). */
  medium: "cdrom" | "usb";
  /** Raw disk images, attached as virtio disks in this order (vda, vdb, ...). */
  disks: string[];
  /** A read-only seed image attached after the disks. */
  seed: string;
  forwards: Forward[];
  dir: string;
  timeoutMs: number;
  memoryMiB?: number;
}

export interface Boot {
  /** null when the guest did not power off in time and QEMU was ended. */
  code: number | null;
  timedOut: boolean;
  /** The serial console, escape sequences stripped. */
  serial: string;
  /** Milliseconds from QEMU's start to the first line of start.sh, if seen. */
  msToStart: number | undefined;
  ms: number;
}

/** Tools the boot needs; the names of the missing ones. */
export function missingTools(): string[] {
  const missing: string[] = [];
  for (const tool of ["qemu-system-x86_64", "socat", "mkfs.vfat", "mcopy", "mmd"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) missing.push(tool);
  }
  if (!existsSync(OVMF_CODE)) missing.push("ovmf");
  return missing;
}

/** Serial output as a person would read it: no colour, cursor movement or carriage returns. */
export function plainText(raw: string): string {
  const text = stripVTControlCharacters(raw).replace(/\r\n?/g, "\n");
  return [...text].filter((ch) => ch === "\n" || ch === "\t" || (ch >= " " && ch !== "\u007f")).join("");
}

export async function boot(options: BootOptions): Promise<Boot> {
  const serialPath = join(options.dir, `serial-${options.firmware}-${options.medium}.log`);
  const netdev = [
    "user,id=net0,restrict=on",
    ...options.forwards.map((f) => `guestfwd=tcp:${f.guest.host}:${f.guest.port}-cmd:socat STDIO TCP:${f.host.host}:${f.host.port}`),
  ].join(",");
  const args = [
    "-machine", "q35",
    "-accel", "tcg",
    "-smp", "1",
    "-m", String(options.memoryMiB ?? 1536),
    "-display", "none",
    "-monitor", "none",
    "-serial", `file:${serialPath}`,
    "-no-reboot",
    "-netdev", netdev,
    // No option ROM: the firmware would otherwise try a network boot before the CD.
    "-device", "virtio-net-pci,netdev=net0,romfile=",
    ...(options.medium === "cdrom"
      ? ["-drive", `file=${options.iso},media=cdrom,if=none,id=boot0,readonly=on`, "-device", "ide-cd,drive=boot0,bus=ide.0,bootindex=0"]
      : ["-drive", `file=${options.iso},format=raw,if=none,id=boot0,readonly=on`, "-device", "qemu-xhci", "-device", "usb-storage,drive=boot0,bootindex=0"]),
    ...options.disks.flatMap((disk, i) => ["-drive", `file=${disk},format=raw,if=none,id=disk${i}`, "-device", `virtio-blk-pci,drive=disk${i}`]),
    "-drive", `file=${options.seed},format=raw,if=none,id=seed,readonly=on`,
    // A boot index makes OVMF connect the disk, so GRUB can find it; it has nothing to boot.
    "-device", "virtio-blk-pci,drive=seed,bootindex=9",
  ];
  if (options.firmware === "uefi") {
    const vars = join(options.dir, "OVMF_VARS.fd");
    await copyFile(OVMF_VARS, vars);
    args.unshift("-drive", `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, "-drive", `if=pflash,format=raw,file=${vars}`);
  }

  const started = Date.now();
  const child = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  let msToStart: number | undefined;
  // Polls the serial log for start.sh's first line, to measure the boot time.
  const poll = setInterval(() => {
    if (msToStart !== undefined) return;
    void readFile(serialPath, "utf8").then(
      (text) => {
        if (msToStart === undefined && /Network: /.test(text)) msToStart = Date.now() - started;
      },
      () => undefined,
    );
  }, 1_000);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    // Ended by its own process id, never by name: other QEMUs on the machine are not ours.
    if (child.pid) process.kill(child.pid, "SIGKILL");
  }, options.timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (c) => resolve(c));
  });
  clearTimeout(timer);
  clearInterval(poll);
  const serial = plainText(await readFile(serialPath, "utf8").catch(() => "")) + (stderr ? `\n[qemu] ${stderr}` : "");
  return { code: timedOut ? null : code, timedOut, serial, msToStart, ms: Date.now() - started };
}
