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
  // A WebSocket server that answers each ping 50 ms later, as a peer across a network would.
  const program = `const { WebSocketServer } = require("ws");
    const s = new WebSocketServer({ host: "127.0.0.1", port: 0, autoPong: false });
    s.on("connection", (ws) => ws.on("ping", (data) => setTimeout(() => ws.pong(data), 50)));
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
});
