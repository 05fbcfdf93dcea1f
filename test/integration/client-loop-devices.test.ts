/*
 * Failback into real loop devices (root), once for each --dm-value-format, the result compared
 * byte for byte with the recovery volumes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256File } from "../../src/cli/demo/volumes.js";
import { attachLoopMachine, canUseLoops, type LoopMachine } from "./loops.js";
import { baseWorld, FailbackWorld, MiB } from "./world.js";

describe.skipIf(!canUseLoops)("failback into loop devices", () => {
  let fw: FailbackWorld;
  let machine: LoopMachine;

  beforeAll(async () => {
    fw = await FailbackWorld.start(baseWorld({ recoveryInstanceId: "i-0aaaabbbbccccdddd", sourceServerId: "s-0aaaabbbbccccdddd" }));
    machine = await attachLoopMachine([8 * MiB, 4 * MiB], "71");
  });
  afterAll(async () => {
    await machine?.release();
    await fw?.stop();
  });

  const names = {
    "dev-name": (i: number) => machine.disks[i]!.device,
    "by-path": (i: number) => machine.disks[i]!.byPath,
    "by-id": (i: number) => machine.disks[i]!.byId,
    "by-uuid": (i: number) => `/dev/disk/by-uuid/${machine.disks[i]!.byUuid}`,
    "all-strict": (i: number) => (i === 0 ? machine.disks[0]!.byId : machine.disks[1]!.device),
  };

  it.each(Object.keys(names) as (keyof typeof names)[])("--dm-value-format %s", async (format) => {
    const name = names[format];
    const mapping = `/dev/xvda=${name(0)},/dev/xvdb=${name(1)}`;
    const run = await fw.runClient(fw.onceFlags(mapping, ["--dm-value-format", format, "--system-root", machine.root, "--allow-loop"]));
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    for (const i of [0, 1]) expect(await sha256File(machine.disks[i]!.device)).toBe(await sha256File(fw.recoveryImages[i]!));
  });

  it("refuses loop devices unless --allow-loop, naming the flag", async () => {
    const run = await fw.runClient(fw.onceFlags(`/dev/xvda=${machine.disks[0]!.device},/dev/xvdb=EXCLUDE`, ["--system-root", machine.root]));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--allow-loop/);
  });
});
