/*
 * The WebSocket link's heartbeat against a peer in another process on 127.0.0.1: a link whose
 * answers come is kept, even when this process was too busy to read them in time.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { stat } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { wsLink } from "../../src/replication/link.js";

let peer: ChildProcess;
let port: number;

beforeAll(async () => {
  // A WebSocket server that answers each ping 50 ms later, as a peer across a network would. On
  // /slow it answers no ping and sends one 60,000-byte message 600 bytes at a time, every 15 ms
  // (1.5 s), as a frame crossing a throttled link does, straight onto its socket.
  const program = `const { WebSocketServer } = require("ws");
    const s = new WebSocketServer({ host: "127.0.0.1", port: 0, autoPong: false });
    s.on("connection", (ws, req) => {
      if (req.url !== "/slow") return ws.on("ping", (data) => setTimeout(() => ws.pong(data), 50));
      const socket = ws._socket;
      socket.write(Buffer.from([0x82, 126, 60000 >> 8, 60000 & 0xff]));
      let sent = 0;
      const timer = setInterval(() => {
        socket.write(Buffer.alloc(600, 7));
        sent += 600;
        if (sent >= 60000) clearInterval(timer);
      }, 15);
      socket.on("close", () => clearInterval(timer));
    });
    s.on("listening", () => console.log(s.address().port));`;
  peer = spawn(process.execPath, ["-e", program], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = (await once(peer.stdout!, "data")) as [Buffer];
  port = Number(line.toString().trim());
});
afterAll(() => {
  peer?.kill();
});

function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

describe("the link's heartbeat", () => {
  it("keeps a link whose answer waits to be read when this process was busy past a period", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    await once(ws, "open");
    // Right after the first ping, an I/O callback keeps this process busy past the next tick: the
    // pong arrives meanwhile, and the overdue tick runs before the socket is read again.
    const ping = ws.ping.bind(ws);
    let pings = 0;
    ws.ping = ((...args: Parameters<WebSocket["ping"]>) => {
      ping(...args);
      pings += 1;
      if (pings === 1) stat("/", () => busy(700));
    }) as WebSocket["ping"];
    const link = wsLink(ws, { heartbeatMs: 500 });
    const reasons: string[] = [];
    link.onClose((reason) => reasons.push(reason));
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(pings).toBeGreaterThanOrEqual(3);
    expect(reasons).toEqual([]);
    link.close();
  });

  it("drops a link that answers nothing", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    await once(ws, "open");
    // Pings that never leave: the other end cannot answer them.
    ws.ping = (() => undefined) as WebSocket["ping"];
    const link = wsLink(ws, { heartbeatMs: 200 });
    const closed = new Promise<string>((resolve) => link.onClose(resolve));
    expect(await closed).toContain("nothing heard from the other end");
  });

  it("keeps a link whose one long frame is still arriving, byte after byte, past many periods", async () => {
    // Which comes first: the whole frame, or the heartbeat dropping the link.
    const run = async (withSocket: boolean) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/slow`);
      await once(ws, "open");
      const socket = (ws as unknown as { _socket: { bytesRead: number } })._socket;
      const link = wsLink(ws, { heartbeatMs: 300, ...(withSocket ? { socket } : {}) });
      const first = await new Promise<string>((resolve) => {
        link.onFrame((frame) => resolve(`frame of ${frame.length} bytes`));
        link.onClose((reason) => resolve(reason));
      });
      link.close();
      return first;
    };
    // No pong comes, and no whole frame for 1.5 s (5 periods): the bytes arriving keep the link.
    expect(await run(true)).toBe("frame of 60000 bytes");
    // Blind to them, the heartbeat drops the link before the frame is whole.
    expect(await run(false)).toContain("nothing heard from the other end");
  });
});
