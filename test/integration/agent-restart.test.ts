/*
 * The agent process killed with SIGKILL in the middle of a pass and started again (same port,
 * same identity): the client reconnects, the result is identical, and what was already written
 * is not sent again.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startService, type Service } from "../../src/cli/demo/processes.js";
import { baseWorld, dist, FailbackWorld, MiB } from "./world.js";

let fw: FailbackWorld;
beforeAll(async () => {
  // 16 Mbps: the first pass takes a few seconds, long enough to kill the agent in its middle.
  fw = await FailbackWorld.start(baseWorld({ recoveryInstanceId: "i-0eeeeffff00001111", sourceServerId: "s-0eeeeffff00001111", throttleMbps: 16 }));
});
afterAll(() => fw?.stop());

describe("agent killed mid-pass", () => {
  it("the client reconnects to the restarted agent and ends identical, re-sending little", async () => {
    const [a, b] = await fw.blankImages("restart", [8 * MiB, 4 * MiB]);
    let restarted: Service | undefined;
    const agentArgs = (listen: string) => [
      "--listen", listen,
      ...fw.world.volumes.flatMap((v, i) => ["--volume", `${v.deviceName}=${fw.recoveryImages[i]}`]),
      "--recovery-instance-id", fw.world.recoveryInstanceId,
      "--state-dir", join(fw.dir, "agent-state"),
      "--endpoint", fw.emulator.address,
      ...fw.credentialFlags(),
    ];
    const killAndRestart = setTimeout(() => {
      fw.agent.child.kill("SIGKILL");
      void startService(dist("agent"), agentArgs(fw.agentAddress), { env: fw.env() }).then((s) => (restarted = s));
    }, 1_500);
    try {
      const run = await fw.runClient(fw.onceFlags(`/dev/xvda=${a},/dev/xvdb=${b}`, ["--json"]), { timeoutMs: 90_000 });
      expect(run.stderr).not.toContain("failback-client:");
      expect(run.code).toBe(0);
      const events = run.stdout.trim().split("\n").map((l) => JSON.parse(l) as { type: string; summary?: string });
      expect(events.some((e) => e.type === "reconnecting")).toBe(true);
      const sent = /; ([\d.]+) MiB sent/.exec(events.at(-1)?.summary ?? "")?.[1];
      // 9 MiB of the two volumes is not zero, and every attempt's data counts; a resumed pass
      // re-sends at most the blocks in flight.
      expect(Number(sent)).toBeGreaterThanOrEqual(9);
      expect(Number(sent)).toBeLessThan(9 * 1.3);
      expect(await fw.sameAsRecovery(0, a!)).toBe(true);
      expect(await fw.sameAsRecovery(1, b!)).toBe(true);
    } finally {
      clearTimeout(killAndRestart);
      await restarted?.stop();
    }
  });
});
