/*
 * A target that changes while the client waits for the agent to pair: the plan named it, and the
 * program refuses to write what it is now (steps/confirm-targets.ts). The built program against
 * the emulator in this process, whose tags the test changes mid-run.
 */
import { readFile, truncate } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseWorld, FailbackWorld, MiB } from "./world.js";

let fw: FailbackWorld;
beforeAll(async () => {
  fw = await FailbackWorld.start(baseWorld({ recoveryInstanceId: "i-0dddd2222dddd2222", sourceServerId: "s-0dddd2222dddd2222" }), { inProcess: true });
});
afterAll(() => fw?.stop());

describe("a target that changed after the plan", () => {
  it("is refused before the first write: exit 2, one line, the image untouched", async () => {
    const instance = fw.drs!.state.recoveryInstances.find((r) => r.recoveryInstanceID === fw.world.recoveryInstanceId)!;
    const tags = (instance as { tags?: Record<string, string> }).tags ?? {};
    const published = tags["failback:agent-cert-sha256"]!;
    delete tags["failback:agent-cert-sha256"];
    const [a, b] = await fw.blankImages("changed", [8 * MiB, 4 * MiB]);
    let changed = false;
    const run = await fw.runClient(fw.onceFlags(`/dev/xvda=${a},/dev/xvdb=${b}`), {
      onStdout: (text) => {
        if (changed || !text.includes("Waiting for the agent")) return;
        changed = true;
        // Someone replaces the image with a larger one while pairing waits; then the agent pairs.
        void truncate(b!, 6 * MiB).then(() => (tags["failback:agent-cert-sha256"] = published));
      },
      timeoutMs: 30_000,
    });
    expect(changed).toBe(true);
    expect(run.code).toBe(2);
    const lines = run.stderr.trim().split("\n").filter((l) => l.startsWith("failback-client:"));
    expect(lines).toEqual([expect.stringMatching(/^failback-client: the local disks changed since the plan: .*changed-1\.img is now 6\.00 MiB, not the 4\.00 MiB of the plan\. Nothing was written/)]);
    expect((await readFile(a!)).equals(Buffer.alloc(8 * MiB))).toBe(true);
    expect((await readFile(b!)).equals(Buffer.alloc(6 * MiB))).toBe(true);
  }, 40_000);
});
