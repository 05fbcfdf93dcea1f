/*
 * One Ctrl-C (or SIGTERM) stops failback-client wherever it waits: exit 130 and one line, never a
 * wait for ever nor another step's failure. The program as a process, against the emulator, or
 * against an endpoint that takes requests and never answers (a black-holed path, a hung proxy).
 */
import { createServer, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseWorld, FailbackWorld, MiB } from "./world.js";

let fw: FailbackWorld;
beforeAll(async () => {
  fw = await FailbackWorld.start(baseWorld({ recoveryInstanceId: "i-0cccc1111cccc1111", sourceServerId: "s-0cccc1111cccc1111" }), { inProcess: true });
});
afterAll(() => fw?.stop());

const errorLines = (stderr: string) => stderr.trim().split("\n").filter((l) => l.startsWith("failback-client:"));

describe("one Ctrl-C stops the client", () => {
  it("while DRS takes the request and never answers: exit 130 at once, not after the request gives up", async () => {
    const held: Socket[] = [];
    let requests = 0;
    const silent = createServer((socket) => {
      held.push(socket);
      socket.on("data", () => (requests += 1));
      socket.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
    try {
      const [a] = await fw.blankImages("silent", [8 * MiB]);
      const flags = fw.onceFlags(`/dev/xvda=${a},/dev/xvdb=EXCLUDE`).map((f) => (f === fw.emulator.address ? url : f));
      let pid = 0;
      const run = await fw.runClient(flags, {
        env: { AWS_ENDPOINT_URL_STS: url },
        onStart: (p) => {
          pid = p;
          const poll = setInterval(() => {
            if (requests === 0) return;
            clearInterval(poll);
            process.kill(pid, "SIGINT");
          }, 50);
        },
        // The request timeout is 30 s: a run that only ends through it is killed first (code null).
        timeoutMs: 20_000,
      });
      expect(run.code).toBe(130);
      expect(errorLines(run.stderr)).toEqual(["failback-client: cancelled; nothing more was written"]);
    } finally {
      for (const socket of held) socket.destroy();
      silent.close();
    }
  }, 30_000);

  it.each(["SIGINT", "SIGTERM"] as const)("%s while waiting for the agent to publish its fingerprint: exit 130, not 'the agent has not published'", async (signal) => {
    const instance = fw.drs!.state.recoveryInstances.find((r) => r.recoveryInstanceID === fw.world.recoveryInstanceId)!;
    const tags = (instance as { tags?: Record<string, string> }).tags ?? {};
    const published = tags["failback:agent-cert-sha256"];
    delete tags["failback:agent-cert-sha256"];
    try {
      const [a, b] = await fw.blankImages(`pair-${signal}`, [8 * MiB, 4 * MiB]);
      let pid = 0;
      let sent = false;
      const run = await fw.runClient(fw.onceFlags(`/dev/xvda=${a},/dev/xvdb=${b}`), {
        onStart: (p) => (pid = p),
        onStdout: (text) => {
          if (sent || !text.includes("Waiting for the agent")) return;
          sent = true;
          setTimeout(() => process.kill(pid, signal), 300);
        },
        timeoutMs: 30_000,
      });
      expect(sent).toBe(true);
      expect(run.code).toBe(130);
      expect(errorLines(run.stderr)).toEqual(["failback-client: cancelled; nothing more was written"]);
    } finally {
      if (published !== undefined) tags["failback:agent-cert-sha256"] = published;
    }
  }, 40_000);
});
