/*
 * Booting the live ISO in QEMU for its test: BIOS (SeaBIOS) or UEFI (OVMF), under TCG with one
 * vCPU. The paravirtual /dev/kvm of these machines cannot run a stock kernel or firmware, so KVM
 * is never asked for. The guest's network is QEMU's user network with restrict=on: it reaches only
 * the services forwarded to the host's loopback, one guestfwd each.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFile } from "node:fs/promises";
import { createConnection, type Socket } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
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
  /** What went wrong while answering the console, if anything. */
  interaction?: Error;
  /** Whether the guest ejected the CD. */
  trayOpened: boolean;
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

/**
 * The guest's serial console as a person at it: everything it printed so far, waiting for a line,
 * typing an answer. Waits are bounded and look only at what came after the last answer.
 */
export class SerialConsole {
  private raw = "";
  private from = 0;
  private closed = false;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.raw += chunk.toString("latin1");
      for (const wake of this.waiters) wake();
    });
    // The guest is gone (powered off, rebooted, ended): nothing more will come.
    socket.on("close", () => {
      this.closed = true;
      for (const wake of this.waiters) wake();
    });
  }

  text(): string {
    return plainText(this.raw);
  }

  /** Whether the console ever showed the pattern (the answers' cursor stays where it is). */
  seen(pattern: RegExp): boolean {
    return pattern.test(this.text());
  }

  async waitFor(pattern: RegExp, timeoutMs = 120_000): Promise<void> {
    const found = () => {
      const text = this.text();
      const match = pattern.exec(text.slice(this.from));
      if (match) this.from += match.index + match[0].length;
      return Boolean(match);
    };
    if (found()) return;
    await new Promise<void>((resolve, reject) => {
      const wake = () => {
        const done = found();
        if (!done && !this.closed) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
        if (done) resolve();
        else reject(new Error(`the guest's serial console closed before it showed ${pattern}`));
      };
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`the serial console did not show ${pattern} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiters.add(wake);
    });
  }

  /** Types a line as at a keyboard: the text, then Enter. */
  type(line: string): void {
    this.socket.write(`${line}\r`);
  }
}

export async function boot(options: BootOptions, interact?: (serial: SerialConsole) => Promise<void>): Promise<Boot> {
  const socketPath = join(options.dir, `serial-${options.firmware}-${options.medium}.sock`);
  const qmpPath = join(options.dir, `qmp-${options.firmware}-${options.medium}.sock`);
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
    // QEMU waits for the test to connect before it starts the guest, so no output is lost.
    "-chardev", `socket,id=serial0,path=${socketPath},server=on,wait=on`,
    "-serial", "chardev:serial0",
    // QEMU's machine protocol, for the one event the test watches: the guest opening the CD tray.
    "-qmp", `unix:${qmpPath},server=on,wait=off`,
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
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (c) => resolve(c));
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    // Ended by its own process id, never by name: other QEMUs on the machine are not ours.
    if (child.pid) process.kill(child.pid, "SIGKILL");
  }, options.timeoutMs);

  const socket = await connectWhenListening(socketPath, child);
  const serial = new SerialConsole(socket);
  const qmp = await connectWhenListening(qmpPath, child);
  let trayOpened = false;
  let events = "";
  qmp.on("data", (chunk: Buffer) => {
    events += chunk.toString();
    if (/"event": ?"DEVICE_TRAY_MOVED"[^\n]*"tray-open": ?true/.test(events)) trayOpened = true;
  });
  qmp.write(`${JSON.stringify({ execute: "qmp_capabilities" })}\n`);
  let msToStart: number | undefined;
  const onData = () => {
    if (!serial.seen(/Network: /)) return;
    msToStart = Date.now() - started;
    socket.off("data", onData);
  };
  socket.on("data", onData);
  let interaction: Error | undefined;
  if (interact) {
    await interact(serial).catch((error: unknown) => {
      interaction = error instanceof Error ? error : new Error(String(error));
    });
  }
  const code = await exited;
  clearTimeout(timer);
  socket.destroy();
  qmp.destroy();
  const text = serial.text() + (stderr ? `\n[qemu] ${stderr}` : "");
  return { code: timedOut ? null : code, timedOut, serial: text, msToStart, ms: Date.now() - started, interaction, trayOpened };
}

/** A socket QEMU serves, once it is listening: bounded by QEMU's exit and by a minute. */
async function connectWhenListening(path: string, child: ChildProcess): Promise<Socket> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    const socket = await new Promise<Socket | undefined>((resolve) => {
      const s = createConnection(path, () => resolve(s));
      s.once("error", () => resolve(undefined));
    });
    if (socket) return socket;
    await delay(100);
  }
  throw new Error(`QEMU did not open ${path} (exit ${child.exitCode ?? child.signalCode ?? "none"})`);
}
