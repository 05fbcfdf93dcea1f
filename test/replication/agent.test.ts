/*
 * The agent's server on 127.0.0.1: what its close() ends.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { WebSocket } from "ws";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encode, loadOrCreateIdentity, startAgent, Type, VERSION, type TlsIdentity } from "../../src/replication/index.js";

let dir: string;
let identity: TlsIdentity;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "agent-close-"));
  identity = await loadOrCreateIdentity(join(dir, "agent"), "agent");
  await writeFile(join(dir, "volume.img"), Buffer.alloc(2 ** 20));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("agent close()", () => {
  it("ends a connection that has not finished its TLS handshake, instead of waiting for it", async () => {
    const agent = await startAgent({ host: "127.0.0.1", port: 0, volumes: [{ deviceName: "/dev/xvda", path: join(dir, "volume.img") }], identity, authorize: () => true });
    // Plain TCP, connected and silent: the agent's TLS handshake waits for a ClientHello that never comes.
    const socket = connect(agent.port, "127.0.0.1");
    socket.on("error", () => undefined);
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    const ended = new Promise<boolean>((resolve) => {
      socket.once("close", () => resolve(true));
      setTimeout(() => resolve(false), 10_000).unref();
    });
    const closing = agent.close({ waitMs: 60_000 });
    try {
      expect(await ended).toBe(true);
      expect(await closing).toEqual({ sessions: 0, unfinished: 0 });
    } finally {
      // Without the fix, close() waits for this socket: let it go so the test ends.
      socket.destroy();
      await closing;
    }
  });
});

describe("a client that vanished", () => {
  it("loses its session once nothing came from it for the silence limit: no ping answered, nothing sent", async () => {
    const lines: string[] = [];
    const agent = await startAgent({ host: "127.0.0.1", port: 0, volumes: [{ deviceName: "/dev/xvda", path: join(dir, "volume.img") }], identity, authorize: () => true, log: (line) => lines.push(line), clientSilenceMs: 300 });
    const client = await loadOrCreateIdentity(join(dir, "client"), "client");
    // A client that says HELLO and then goes dark: it never answers a ping (autoPong off) and sends nothing.
    const ws = new WebSocket(`wss://127.0.0.1:${agent.port}/failback`, { cert: client.certPem, key: client.keyPem, rejectUnauthorized: false, perMessageDeflate: false, autoPong: false });
    ws.on("error", () => undefined);
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      ws.send(encode({ type: Type.Hello, version: VERSION, body: { volumes: [{ device: "/dev/xvda", localBytes: 2 ** 20 }], throttleMbps: 0, codecs: [] } }));
      const closed = new Promise<boolean>((resolve) => {
        ws.once("close", () => resolve(true));
        setTimeout(() => resolve(false), 5_000).unref();
      });
      expect(await closed).toBe(true);
      for (let i = 0; i < 50 && !lines.some((l) => l.includes("disconnected")); i += 1) await new Promise((r) => setTimeout(r, 20));
      expect(lines.filter((l) => l.includes("disconnected"))).toHaveLength(1);
    } finally {
      ws.terminate();
      await agent.close();
    }
  });
});
