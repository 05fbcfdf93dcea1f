/*
 * Agent and client over real TLS 1.3 + WebSocket on 127.0.0.1, with image files: results
 * compared byte for byte and bytes on the wire counted; refusals before any data; a cut link.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { connect as netConnect, createServer, type Server, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadOrCreateIdentity, replicate, startAgent, type ReplicationEvent, type ReplicationSummary, type TlsIdentity } from "../../src/replication/index.js";

const MiB = 2 ** 20;
let dir: string;
let agentId: TlsIdentity;
let clientId: TlsIdentity;
let otherId: TlsIdentity;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "replication-"));
  [agentId, clientId, otherId] = await Promise.all([
    loadOrCreateIdentity(join(dir, "agent"), "agent"),
    loadOrCreateIdentity(join(dir, "client"), "client"),
    loadOrCreateIdentity(join(dir, "other"), "other"),
  ]);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

let counter = 0;
/** An image of `mib` MiB: random data in the first half of each MiB, zeros in the rest. */
async function image(mib: number, seed = "s"): Promise<string> {
  const path = join(dir, `img-${counter++}.img`);
  const buf = Buffer.alloc(mib * MiB);
  for (let i = 0; i < mib; i += 1) randomFill(buf, i * MiB, MiB / 2, `${seed}${i}`);
  await writeFile(path, buf);
  return path;
}
function randomFill(buf: Buffer, at: number, length: number, seed: string) {
  let block = createHash("sha512").update(seed).digest();
  for (let o = 0; o < length; o += 64) {
    block.copy(buf, at + o);
    block = createHash("sha512").update(block).digest();
  }
}
async function blank(bytes: number): Promise<string> {
  const path = join(dir, `blank-${counter++}.img`);
  await writeFile(path, "");
  await truncate(path, bytes);
  return path;
}
const sha = async (path: string, bytes?: number) => createHash("sha256").update((await readFile(path)).subarray(0, bytes)).digest("hex");

async function withAgent<T>(paths: string[], run: (port: number) => Promise<T>, options: { authorize?: (fp: string) => boolean; pairingCode?: string; log?: (line: string) => void } = {}): Promise<T> {
  const agent = await startAgent({
    host: "127.0.0.1",
    port: 0,
    volumes: paths.map((path, i) => ({ deviceName: `/dev/xvd${"abcdefgh"[i]}`, path })),
    identity: agentId,
    authorize: options.authorize ?? ((fp) => fp === clientId.fingerprint),
    pairingCode: options.pairingCode,
    ...(options.log ? { log: options.log } : {}),
  });
  try {
    return await run(agent.port);
  } finally {
    await agent.close();
  }
}

function sync(port: number, pairs: { local: string; localBytes: number; recoveryBytes: number }[], extra: Partial<Parameters<typeof replicate>[0]> = {}): Promise<ReplicationSummary> {
  return replicate({
    host: "127.0.0.1",
    port,
    identity: clientId,
    agentFingerprint: agentId.fingerprint,
    volumes: pairs.map((p, i) => ({ recoveryDevice: `/dev/xvd${"abcdefgh"[i]}`, localPath: p.local, localBytes: p.localBytes, recoveryBytes: p.recoveryBytes })),
    mode: "once",
    reconnect: { attempts: 3, baseDelayMs: 50 },
    ...extra,
  });
}

describe("replication over TLS on 127.0.0.1", () => {
  it("blank target: ends identical, sending only the non-zero data", async () => {
    const source = await image(8);
    const target = await blank(8 * MiB);
    const summary = await withAgent([source], (port) => sync(port, [{ local: target, localBytes: 8 * MiB, recoveryBytes: 8 * MiB }]));
    expect(await sha(target)).toBe(await sha(source));
    expect(summary.sentBytes).toBe(4 * MiB);
    expect(summary.skippedZeroBytes).toBe(4 * MiB);
  });

  it("identical disks: digests on the wire stay below 0.1% of the volume", async () => {
    const source = await image(16, "same");
    const target = await image(16, "same");
    const summary = await withAgent([source], (port) => sync(port, [{ local: target, localBytes: 16 * MiB, recoveryBytes: 16 * MiB }]));
    expect(summary.sentBytes).toBe(0);
    // One group digest per 16 MiB batch: far below the 0.1% the design allows.
    expect(summary.wireBytes).toBeLessThan(0.0001 * 16 * MiB);
  });

  it("1% of blocks changed: only those cross the wire", async () => {
    const source = await image(16, "one");
    const target = await image(16, "one");
    const buf = await readFile(target);
    for (let i = 0; i < 3; i += 1) randomBytes(64 * 1024).copy(buf, (i * 5 + 1) * MiB);
    await writeFile(target, buf);
    const summary = await withAgent([source], (port) => sync(port, [{ local: target, localBytes: 16 * MiB, recoveryBytes: 16 * MiB }]));
    expect(await sha(target)).toBe(await sha(source));
    expect(summary.sentBytes).toBe(3 * 64 * 1024);
    expect(summary.wireBytes).toBeLessThan(3 * 64 * 1024 * 1.05 + 0.002 * 16 * MiB);
  });

  it("grown target: the recovery volume lands at the start of a larger disk", async () => {
    const source = await image(4, "grow");
    const target = await blank(6 * MiB);
    await withAgent([source], (port) => sync(port, [{ local: target, localBytes: 6 * MiB, recoveryBytes: 4 * MiB }]));
    expect(await sha(target, 4 * MiB)).toBe(await sha(source));
  });

  it("fractional tail: a zero tail beyond the local size is accepted, a non-zero one refused", async () => {
    const source = await image(4, "frac");
    await writeFile(source, Buffer.alloc(MiB), { flag: "a" }); // 5 MiB, last MiB zero
    const target = await blank(4 * MiB);
    await withAgent([source], (port) => sync(port, [{ local: target, localBytes: 4 * MiB, recoveryBytes: 5 * MiB }]));
    expect(await sha(target)).toBe(await sha(source, 4 * MiB));
    await writeFile(source, Buffer.from("x"), { flag: "a" });
    const second = await blank(4 * MiB);
    await expect(withAgent([source], (port) => sync(port, [{ local: second, localBytes: 4 * MiB, recoveryBytes: 5 * MiB + 1 }]))).rejects.toMatchObject({ code: "TAIL_NOT_ZERO" });
  });

  it("several volumes at once", async () => {
    const [a, b] = [await image(4, "a"), await image(2, "b")];
    const [ta, tb] = [await blank(4 * MiB), await blank(2 * MiB)];
    await withAgent([a, b], (port) => sync(port, [{ local: ta, localBytes: 4 * MiB, recoveryBytes: 4 * MiB }, { local: tb, localBytes: 2 * MiB, recoveryBytes: 2 * MiB }]));
    expect([await sha(ta), await sha(tb)]).toEqual([await sha(a), await sha(b)]);
  });

  it("a bandwidth limit changed while replicating reaches the agent, which applies it at once", async () => {
    // 4 MiB of data at 4 Mbps would take 8 s; the limit is lifted once the first data has landed.
    const source = await image(8, "retune");
    const target = await blank(8 * MiB);
    const logs: string[] = [];
    const events: ReplicationEvent[] = [];
    let limit = 4;
    await withAgent([source], (port) => sync(port, [{ local: target, localBytes: 8 * MiB, recoveryBytes: 8 * MiB }], {
      throttleMbps: () => limit,
      heartbeatMs: 100,
      onEvent: (e) => {
        events.push(e);
        if (e.type === "progress" && e.sentBytes > 0) limit = 0;
      },
    }), { log: (line) => logs.push(line) });
    expect(await sha(target)).toBe(await sha(source));
    expect(logs.some((l) => l.includes("throttled to 4 Mbps"))).toBe(true);
    expect(logs.some((l) => l.includes("bandwidth limit now none"))).toBe(true);
    expect(events.filter((e) => e.type === "throttle")).toEqual([{ type: "throttle", mbps: 0 }]);
  });

  it("throttle: the data rate stays under the limit", async () => {
    const source = await image(4, "slow");
    const target = await blank(4 * MiB);
    const started = Date.now();
    // A heartbeat far shorter than the gaps between frames at this rate: the agent's pongs keep it
    // from taking the throttled link for a silent one.
    const events: string[] = [];
    const summary = await withAgent([source], (port) => sync(port, [{ local: target, localBytes: 4 * MiB, recoveryBytes: 4 * MiB }], { throttleMbps: 8, heartbeatMs: 100, onEvent: (e) => events.push(e.type) }));
    const seconds = (Date.now() - started) / 1000;
    expect((summary.sentBytes * 8) / 1e6 / seconds).toBeLessThan(8 * 1.1);
    expect(events).not.toContain("reconnecting");
  });

  it("under a bandwidth limit, compressible data goes compressed: more volume through the limit, the wire still under it", async () => {
    // Log-like text, 48 MiB: at 80 Mbps (10 MB/s) raw it would take about 5 s.
    let text = "";
    for (let i = 0; text.length < 48 * MiB; i += 1) text += `line ${i} volume ${(i * 7919) % 10007} replicated block ${i % 97} ok\n`;
    const source = join(dir, `text-${counter++}.img`);
    await writeFile(source, text.slice(0, 48 * MiB));
    const target = await blank(48 * MiB);
    const lines: string[] = [];
    const started = Date.now();
    const summary = await withAgent([source], (port) => sync(port, [{ local: target, localBytes: 48 * MiB, recoveryBytes: 48 * MiB }], { throttleMbps: 80, heartbeatMs: 200 }), { log: (line) => lines.push(line) });
    const seconds = (Date.now() - started) / 1000;
    expect(await sha(target)).toBe(await sha(source));
    // The limit holds for what crosses: the agent's frames, whatever they carry.
    expect((summary.wireBytesIn * 8) / 1e6 / seconds).toBeLessThan(80 * 1.1);
    expect(summary.sentBytes).toBe(48 * MiB);
    expect(summary.sentBytes).toBeGreaterThan(1.5 * summary.wireBytesIn);
    // The agent's log says how much went compressed, into how many bytes.
    expect(lines.join("\n")).toMatch(/disconnected; 50331648 bytes of data sent \(\d+ compressed into \d+\)/);
  });

  it("a link cut mid-pass resumes to an identical result without re-sending much", async () => {
    const source = await image(16, "cut");
    const target = await blank(16 * MiB);
    await withAgent([source], async (agentPort) => {
      // A proxy on 127.0.0.1 that cuts the first connection after 2 MiB have passed.
      let cuts = 0;
      const proxy: Server = createServer((inbound: Socket) => {
        const outbound = netConnect(agentPort, "127.0.0.1");
        let passed = 0;
        const first = cuts === 0;
        outbound.on("data", (d) => {
          passed += d.length;
          if (first && passed > 2 * MiB && cuts === 0) {
            cuts += 1;
            inbound.destroy();
            outbound.destroy();
            return;
          }
          inbound.write(d);
        });
        inbound.on("data", (d) => outbound.write(d));
        inbound.on("error", () => outbound.destroy());
        outbound.on("error", () => inbound.destroy());
        inbound.on("close", () => outbound.destroy());
        outbound.on("close", () => inbound.destroy());
      });
      await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", () => r()));
      const events: string[] = [];
      try {
        const port = (proxy.address() as { port: number }).port;
        const summary = await sync(port, [{ local: target, localBytes: 16 * MiB, recoveryBytes: 16 * MiB }], { onEvent: (e) => events.push(e.type) });
        expect(cuts).toBe(1);
        expect(events).toContain("reconnecting");
        // 8 MiB of the image is not zero, and every attempt's data counts: what was in flight at
        // the cut (under 2 MiB) may cross twice, nothing else.
        expect(summary.sentBytes).toBeGreaterThanOrEqual(8 * MiB);
        expect(summary.sentBytes).toBeLessThan(10 * MiB);
      } finally {
        proxy.close();
      }
    });
    expect(await sha(target)).toBe(await sha(source));
  });
});

/**
 * A TCP proxy on 127.0.0.1 in front of the agent whose first connection goes silent after `after`
 * bytes from the agent: nothing more is forwarded either way, and nothing is closed, as when a
 * path dies far away. Later connections pass through.
 */
async function silentAfter(agentPort: number, after: number): Promise<{ port: number; connections: () => number; close: () => void }> {
  let connections = 0;
  const sockets: Socket[] = [];
  const proxy: Server = createServer((inbound: Socket) => {
    connections += 1;
    const first = connections === 1;
    const outbound = netConnect(agentPort, "127.0.0.1");
    sockets.push(inbound, outbound);
    let passed = 0;
    outbound.on("data", (d) => {
      passed += d.length;
      if (first && passed > after) return;
      inbound.write(d);
    });
    inbound.on("data", (d) => {
      if (first && passed > after) return;
      outbound.write(d);
    });
    for (const [a, b] of [[inbound, outbound], [outbound, inbound]] as const) {
      a.on("error", () => b.destroy());
      a.on("close", () => b.destroy());
    }
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", () => r()));
  return {
    port: (proxy.address() as { port: number }).port,
    connections: () => connections,
    close: () => {
      for (const socket of sockets) socket.destroy();
      proxy.close();
    },
  };
}

describe("a path that goes silent", () => {
  it("is dropped by the client's heartbeat, and the pass ends identical over a new connection", async () => {
    const source = await image(16, "silent");
    const target = await blank(16 * MiB);
    await withAgent([source], async (agentPort) => {
      const proxy = await silentAfter(agentPort, 2 * MiB);
      const reasons: string[] = [];
      try {
        await sync(proxy.port, [{ local: target, localBytes: 16 * MiB, recoveryBytes: 16 * MiB }], {
          heartbeatMs: 300,
          onEvent: (e) => {
            if (e.type === "reconnecting") reasons.push(e.reason);
          },
        });
        expect(proxy.connections()).toBe(2);
        expect(reasons).toEqual([expect.stringContaining("nothing heard from the other end")]);
      } finally {
        proxy.close();
      }
    });
    expect(await sha(target)).toBe(await sha(source));
  });

  it("a cancel ends a pass that waits on it at once", async () => {
    const source = await image(16, "cancel");
    const target = await blank(16 * MiB);
    await withAgent([source], async (agentPort) => {
      const proxy = await silentAfter(agentPort, 2 * MiB);
      const cancel = new AbortController();
      try {
        const run = sync(proxy.port, [{ local: target, localBytes: 16 * MiB, recoveryBytes: 16 * MiB }], {
          heartbeatMs: 600_000,
          signal: cancel.signal,
          onEvent: (e) => {
            if (e.type === "progress" && e.sentBytes > 0) setTimeout(() => cancel.abort(), 500);
          },
        });
        await expect(run).rejects.toMatchObject({ code: "CANCELLED" });
        expect(proxy.connections()).toBe(1);
      } finally {
        proxy.close();
      }
    });
    // Within 10 s: without the cancel, the pass would wait for the 600 s heartbeat.
  }, 10_000);
});

describe("a cancel while connecting", () => {
  it("ends an attempt whose TLS handshake is not answered", async () => {
    // A listener that accepts the TCP connection and then says nothing.
    const sockets: Socket[] = [];
    const mute: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((r) => mute.listen(0, "127.0.0.1", () => r()));
    const cancel = new AbortController();
    try {
      const target = await blank(MiB);
      const run = sync((mute.address() as { port: number }).port, [{ local: target, localBytes: MiB, recoveryBytes: MiB }], { signal: cancel.signal });
      await new Promise((r) => setTimeout(r, 300));
      expect(sockets.length).toBe(1);
      cancel.abort();
      // Within the test's 5 s: the handshake alone would wait 15 s before the first retry.
      await expect(run).rejects.toMatchObject({ code: "CANCELLED" });
    } finally {
      for (const socket of sockets) socket.destroy();
      mute.close();
    }
  }, 5_000);
});

describe("security", () => {
  it("the agent has the kernel probe an idle client's connection (TCP keepalive)", async () => {
    // A client that vanished without a FIN or RST would otherwise keep its session for good.
    const source = await image(1, "keepalive");
    const target = await blank(MiB);
    await withAgent([source], async (port) => {
      const finish = new AbortController();
      let sockets = "";
      // Between passes the link is idle; once the last bytes are acknowledged, the kernel shows the
      // agent's socket waiting on its keepalive timer (20 looks, 50 ms apart).
      const look = async () => {
        for (let i = 0; i < 20 && !/timer:\(keepalive,/.test(sockets); i += 1) {
          await new Promise((r) => setTimeout(r, 50));
          sockets = execFileSync("ss", ["-tnoH", "state", "established", `( sport = :${port} )`], { encoding: "utf8" });
        }
        finish.abort();
      };
      await sync(port, [{ local: target, localBytes: MiB, recoveryBytes: MiB }], {
        mode: "continuous",
        finishSignal: finish.signal,
        intervalMs: 2_000,
        onEvent: (e) => {
          if (e.type === "pass-complete" && e.pass === 1) void look();
        },
      });
      expect(sockets).toMatch(/timer:\(keepalive,/);
    });
  });

  it("a client that is not the paired one is refused before any data", async () => {
    const target = await blank(MiB);
    const source = await image(1, "sec");
    await expect(withAgent([source], (port) => sync(port, [{ local: target, localBytes: MiB, recoveryBytes: MiB }], { identity: otherId }))).rejects.toMatchObject({ code: "PAIRING_REFUSED" });
    expect((await readFile(target)).every((b) => b === 0)).toBe(true);
  });

  it("an impostor agent is refused before anything is sent", async () => {
    const target = await blank(MiB);
    await expect(withAgent([await image(1, "imp")], (port) => sync(port, [{ local: target, localBytes: MiB, recoveryBytes: MiB }], { agentFingerprint: otherId.fingerprint }))).rejects.toMatchObject({ code: "AGENT_IMPOSTOR" });
    expect((await readFile(target)).every((b) => b === 0)).toBe(true);
  });

  it("manual pairing: an agent that cannot prove the code is refused by the client before any data", async () => {
    // An agent that takes any client (no code of its own): it answers READY without the proof.
    const target = await blank(MiB);
    const source = await image(1, "nocode");
    await expect(
      withAgent([source], (port) => sync(port, [{ local: target, localBytes: MiB, recoveryBytes: MiB }], { agentFingerprint: undefined, pairingCode: "correct-horse-battery-staple-42" }), { authorize: () => true }),
    ).rejects.toMatchObject({ code: "AGENT_IMPOSTOR", message: expect.stringContaining("could not prove the pairing code") });
    expect((await readFile(target)).every((b) => b === 0)).toBe(true);
  });

  it("manual pairing: the right code works, a wrong one is refused", async () => {
    const source = await image(1, "code");
    const target = await blank(MiB);
    const code = "correct-horse-battery-staple-42";
    await withAgent([source], (port) => sync(port, [{ local: target, localBytes: MiB, recoveryBytes: MiB }], { agentFingerprint: undefined, pairingCode: code }), { pairingCode: code });
    expect(await sha(target)).toBe(await sha(source));
    await expect(
      withAgent([source], (port) => sync(port, [{ local: target, localBytes: MiB, recoveryBytes: MiB }], { agentFingerprint: undefined, pairingCode: "wrong-code" }), { pairingCode: code }),
    ).rejects.toMatchObject({ code: "PAIRING_REFUSED" });
  });

  it("plain TCP gets nothing, and TLS 1.2 is refused", async () => {
    await withAgent([await image(1, "tls")], async (port) => {
      const plain = await new Promise<string>((resolve) => {
        const s = netConnect(port, "127.0.0.1", () => s.write("GET /failback HTTP/1.1\r\nHost: x\r\n\r\n"));
        let got = "";
        s.on("data", (d) => (got += d.toString("latin1")));
        s.on("close", () => resolve(got));
        s.on("error", () => resolve(got));
        setTimeout(() => s.destroy(), 2000);
      });
      expect(plain).not.toContain("HTTP/1.1 101");
      const tls12 = await new Promise<string>((resolve) => {
        const s = tlsConnect({ port, host: "127.0.0.1", maxVersion: "TLSv1.2", rejectUnauthorized: false, cert: clientId.certPem, key: clientId.keyPem }, () => resolve("connected"));
        s.on("error", (e) => resolve(e.message));
      });
      expect(tls12).toMatch(/protocol version|alert/i);
    });
  });
});
