/*
 * The interactive flow driven as a person would, in a real terminal (tmux): typing credentials,
 * a wrong region asked again, choosing the instance by number (a wrong number first) and by id, a
 * per-volume mapping with EXCLUDE, the whole mapping as one ALL= line, and the plan approved (only
 * by a whole "yes") or declined, or not asked when --device-mapping gave the disks. Local disks are
 * real loop devices (root), so the list of instances that fit is the real one.
 */
import { execFileSync } from "node:child_process";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256File } from "../../src/cli/demo/volumes.js";
import { attachLoopMachine, canUseLoops, type LoopMachine } from "./loops.js";
import { Terminal } from "./terminal.js";
import { baseWorld, dist, FailbackWorld, MiB } from "./world.js";

const hasTmux = (() => {
  try {
    execFileSync("tmux", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!canUseLoops || !hasTmux)("failback-client at a terminal", () => {
  let fw: FailbackWorld;
  let machine: LoopMachine;
  const terminals: Terminal[] = [];

  beforeAll(async () => {
    fw = await FailbackWorld.start(
      baseWorld({
        recoveryInstanceId: "i-0bbbbccccddddeeee",
        sourceServerId: "s-0bbbbccccddddeeee",
        others: [
          { recoveryInstanceId: "i-0ccccddddeeeeffff", sourceServerId: "s-0ccccddddeeeeffff", hostname: "app-02", macAddress: "02:00:00:00:02:02", volumes: [{ deviceName: "/dev/xvda", bytes: 4 * MiB }] },
          { recoveryInstanceId: "i-0ddddeeeeffff0000", sourceServerId: "s-0ddddeeeeffff0000", hostname: "big-03", macAddress: "02:00:00:00:03:03", volumes: [{ deviceName: "/dev/xvda", bytes: 64 * MiB }] },
        ],
      }),
    );
    // Two disks of the same size: the mapping cannot be guessed, so the client asks.
    machine = await attachLoopMachine([8 * MiB, 8 * MiB], "72");
  });
  afterAll(async () => {
    await Promise.all(terminals.map((t) => t.close()));
    await machine?.release();
    await fw?.stop();
  });

  async function startClient(...flags: string[]): Promise<Terminal> {
    const env = Object.fromEntries(Object.entries(fw.env()).filter((e): e is [string, string] => e[1] !== undefined));
    const t = await Terminal.start(
      [process.execPath, dist("failback-client"), "--once", "--system-root", machine.root, "--allow-loop", "--agent-address", fw.agentAddress, "--state-dir", join(fw.dir, "tty-state"), ...flags],
      { ...env, TERM: "xterm" },
    );
    terminals.push(t);
    await t.waitFor(/AWS access key id/);
    await t.type(fw.world.accessKeyId);
    await t.waitFor(/secret access key/);
    await t.type(fw.world.secretAccessKey);
    await t.waitFor(/session token/);
    await t.type("");
    await t.waitFor(/AWS region/);
    await t.type("mars-north-1x");
    await t.waitFor(/is not an AWS region name/);
    await t.key("C-u");
    await t.type("us-east-1");
    await t.waitFor(/Custom DRS endpoint/);
    await t.type(fw.emulator.address);
    await t.waitFor(/Choose a Recovery Instance/);
    return t;
  }

  it("by number, with a wrong number first, and a per-volume mapping with EXCLUDE", async () => {
    const t = await startClient();
    const screen = await t.screen();
    // The 64 MiB instance does not fit 8 + 8 MiB of local disks, so it is not offered.
    expect(screen).toContain("i-0bbbbccccddddeeee");
    expect(screen).toContain("i-0ccccddddeeeeffff");
    expect(screen).not.toContain("i-0ddddeeeeffff0000");
    expect(screen).not.toContain(fw.world.secretAccessKey);
    const number = screen.split("\n").find((l) => l.includes("i-0bbbbccccddddeeee"))?.match(/(\d+)\./)?.[1];
    await t.type("9");
    await t.waitFor(/Choose a number from 1 to 2/);
    await t.key("C-u");
    await t.type(number!);
    await t.waitFor(/Local disk for \/dev\/xvda/);
    await t.type("/dev/sdzz");
    await t.waitFor(/sdzz/);
    await t.key("C-u");
    await t.type(machine.disks[0]!.device);
    await t.waitFor(/Local disk for \/dev\/xvdb/);
    await t.type("EXCLUDE");
    // Only the mapped disk is named as the one to be overwritten, and only a whole "yes" starts.
    await t.waitFor(new RegExp(`Overwrite everything on ${machine.disks[0]!.device} and start the failback\\?\\s+\\(yes/no\\)`));
    await t.type("y");
    await t.waitFor(/Type yes to start, or no to stop without writing anything \(not "y"\)/);
    await t.key("C-u");
    await t.type("yes");
    const end = await t.waitFor(/\[exit \d+\]/, 60_000);
    expect(end).toContain("[exit 0]");
    expect(end).toContain("First pass written, verified and flushed");
    expect(await sha256File(machine.disks[0]!.device)).toBe(await sha256File(fw.recoveryImages[0]!));
  });

  it("by full id, and the whole mapping as one ALL= line", async () => {
    const t = await startClient();
    await t.type("i-0bbbbccccddddeeee");
    await t.waitFor(/Local disk for \/dev\/xvda/);
    await t.type(`ALL="/dev/xvda=${machine.disks[0]!.device},/dev/xvdb=${machine.disks[1]!.device}"`);
    await t.waitFor(/start the failback\?/);
    await t.type("YES");
    const end = await t.waitFor(/\[exit \d+\]/, 60_000);
    expect(end).toContain("[exit 0]");
    expect(await sha256File(machine.disks[0]!.device)).toBe(await sha256File(fw.recoveryImages[0]!));
    // The 4 MiB volume went to the start of an 8 MiB disk.
    const head = Buffer.alloc(4 * MiB);
    const fd = await open(machine.disks[1]!.device, "r");
    await fd.read(head, 0, head.length, 0);
    await fd.close();
    expect(head.equals(await readFile(fw.recoveryImages[1]!))).toBe(true);
  });

  it("no to the plan: exit 130, and neither disk is touched", async () => {
    const before = await Promise.all(machine.disks.map((d) => sha256File(d.device)));
    const t = await startClient();
    await t.type("i-0bbbbccccddddeeee");
    await t.waitFor(/Local disk for \/dev\/xvda/);
    await t.type(`ALL="/dev/xvda=${machine.disks[1]!.device},/dev/xvdb=${machine.disks[0]!.device}"`);
    await t.waitFor(new RegExp(`Overwrite everything on ${machine.disks[1]!.device}, ${machine.disks[0]!.device} and start`));
    await t.type("no");
    const end = await t.waitFor(/\[exit \d+\]/);
    expect(end).toContain("[exit 130]");
    expect(end).toContain("failback-client: the plan was declined at the prompt; nothing was written");
    expect(end).not.toContain("Waiting for the agent");
    expect(await Promise.all(machine.disks.map((d) => sha256File(d.device)))).toEqual(before);
  });

  it("with --device-mapping, the flags are the consent: no question after the instance", async () => {
    const t = await startClient("--device-mapping", `/dev/xvda=${machine.disks[0]!.device},/dev/xvdb=${machine.disks[1]!.device}`);
    await t.type("i-0bbbbccccddddeeee");
    const end = await t.waitFor(/\[exit \d+\]/, 60_000);
    expect(end).toContain("[exit 0]");
    expect(end).not.toContain("start the failback?");
    expect(await sha256File(machine.disks[0]!.device)).toBe(await sha256File(fw.recoveryImages[0]!));
  });

  it("Ctrl-C at a prompt exits cleanly, writing nothing", async () => {
    const env = Object.fromEntries(Object.entries(fw.env()).filter((e): e is [string, string] => e[1] !== undefined));
    const t = await Terminal.start([process.execPath, dist("failback-client"), "--system-root", machine.root, "--allow-loop", "--state-dir", join(fw.dir, "tty-state")], { ...env, TERM: "xterm" });
    terminals.push(t);
    await t.waitFor(/AWS access key id/);
    await t.key("C-c");
    const end = await t.waitFor(/\[exit \d+\]/);
    expect(end).toContain("[exit 130]");
    expect(end).toContain("failback-client: cancelled; nothing more was written");
    expect(end).not.toMatch(/\n\s+at /);
  });
});
