/*
 * The agent's server: TLS 1.3 only, WebSocket framing, and nothing served before the client is
 * authenticated (its certificate's fingerprint accepted by `authorize`, or, in manual mode, its
 * proof of the pairing code bound to this TLS session). For each DIGESTS batch the agent reads the
 * same leaves of its volume, and answers only the leaves that differ: DATA with the leaf's sha256,
 * or ZERO runs. Every send waits for the socket to take it (backpressure), so memory stays bounded
 * by one batch whatever the volume size.
 */
import { createServer, type Server } from "node:https";
import type { TLSSocket } from "node:tls";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { decode, encode, LEAF_SIZE, MAX_FRAME, MAX_JSON, Type, VERSION, type Frame } from "./codec.js";
import { ReplicationError } from "./errors.js";
import { fingerprintOf, type TlsIdentity } from "./identity.js";
import { digest, digestsOf, groupDigest, isZero, leafLength, zeroDigest } from "./leaves.js";
import { pairingProof } from "./pairing-code.js";
import { Throttle } from "./throttle.js";
import { openVolume, type Volume } from "./volume-file.js";

export interface AgentOptions {
  host: string;
  port: number;
  volumes: { deviceName: string; path: string }[];
  identity: TlsIdentity;
  authorize: (clientFingerprint: string) => boolean | Promise<boolean>;
  pairingCode?: string;
  log?: (line: string) => void;
}

export interface Agent {
  port: number;
  close(): Promise<void>;
}

function send(ws: WebSocket, frame: Frame): Promise<void> {
  return new Promise((resolve, reject) => ws.send(encode(frame), { binary: true }, (error) => (error ? reject(error) : resolve())));
}

interface Session {
  volumes: { volume: Volume; size: number; deviceName: string }[];
  throttle: Throttle;
}

async function checkTailZero(volume: Volume, from: number, deviceName: string): Promise<void> {
  for (let at = from; at < volume.size; at += 16 * LEAF_SIZE) {
    const block = await volume.read(at, Math.min(16 * LEAF_SIZE, volume.size - at));
    if (!isZero(block)) {
      throw new ReplicationError(
        "TAIL_NOT_ZERO",
        `agent: ${deviceName} holds data beyond the local disk's size (at ${at} of ${volume.size} bytes): use a local disk of at least ${volume.size} bytes`,
      );
    }
  }
}

/** A batch whose group digest matches is done at once; otherwise the agent asks for its leaves. */
async function answerGroup(ws: WebSocket, session: Session, frame: Extract<Frame, { type: Type.Group }>): Promise<void> {
  const entry = session.volumes[frame.volume];
  if (!entry) throw new ReplicationError("PROTOCOL_MALFORMED", `protocol: no volume ${frame.volume}`);
  const start = frame.first * LEAF_SIZE;
  const length = Math.min(frame.count * LEAF_SIZE, entry.size - start);
  if (start < 0 || length <= 0) throw new ReplicationError("PROTOCOL_MALFORMED", `protocol: leaves ${frame.first}+${frame.count} are beyond ${entry.deviceName}`);
  const mine = groupDigest(digestsOf(await entry.volume.read(start, length)));
  await send(ws, mine.equals(frame.digest) ? { type: Type.BatchDone, volume: frame.volume, batch: frame.batch } : { type: Type.NeedLeaves, volume: frame.volume, batch: frame.batch });
}

async function answerBatch(ws: WebSocket, session: Session, frame: Extract<Frame, { type: Type.Digests }>, stats: { sent: number }): Promise<void> {
  const entry = session.volumes[frame.volume];
  if (!entry) throw new ReplicationError("PROTOCOL_MALFORMED", `protocol: no volume ${frame.volume}`);
  const start = frame.first * LEAF_SIZE;
  const length = Math.min(frame.digests.length * LEAF_SIZE, entry.size - start);
  if (start < 0 || length <= 0) throw new ReplicationError("PROTOCOL_MALFORMED", `protocol: leaves ${frame.first}+${frame.digests.length} are beyond ${entry.deviceName}`);
  const chunk = await entry.volume.read(start, length);
  let zeroRun: { leaf: number; count: number } | null = null;
  const flushZeros = async () => {
    if (zeroRun) await send(ws, { type: Type.Zero, volume: frame.volume, leaf: zeroRun.leaf, count: zeroRun.count });
    zeroRun = null;
  };
  for (let i = 0; i < frame.digests.length; i += 1) {
    const leaf = frame.first + i;
    const len = leafLength(leaf, entry.size);
    if (len <= 0) break;
    const block = chunk.subarray(i * LEAF_SIZE, i * LEAF_SIZE + len);
    if (isZero(block)) {
      const theirs = frame.digests[i]!;
      if (!theirs.equals(zeroDigest(block.length))) {
        if (zeroRun && zeroRun.leaf + zeroRun.count === leaf) zeroRun.count += 1;
        else {
          await flushZeros();
          zeroRun = { leaf, count: 1 };
        }
      }
      continue;
    }
    const mine = digest(block);
    if (mine.equals(frame.digests[i]!)) continue;
    await flushZeros();
    await session.throttle.take(block.length);
    await send(ws, { type: Type.Data, volume: frame.volume, leaf, sha256: mine, payload: block });
    stats.sent += block.length;
  }
  await flushZeros();
  await send(ws, { type: Type.BatchDone, volume: frame.volume, batch: frame.batch });
}

export async function startAgent(options: AgentOptions): Promise<Agent> {
  const log = options.log ?? (() => undefined);
  const server: Server = createServer({
    key: options.identity.keyPem,
    cert: options.identity.certPem,
    minVersion: "TLSv1.3",
    requestCert: true,
    // Client certificates are self-signed and pinned by fingerprint below, not checked against a CA.
    rejectUnauthorized: false,
  });
  const wss = new WebSocketServer({
    server,
    perMessageDeflate: false,
    maxPayload: MAX_FRAME + MAX_JSON,
    verifyClient: (info, done) => {
      const socket = info.req.socket as TLSSocket;
      const cert = socket.getPeerCertificate();
      const who = `${socket.remoteAddress}:${socket.remotePort}`;
      if (!cert?.raw) {
        log(`refused ${who}: no client certificate`);
        done(false, 401, "client certificate required");
        return;
      }
      const fingerprint = fingerprintOf(cert.raw);
      if (options.pairingCode !== undefined) {
        done(true);
        return;
      }
      Promise.resolve(options.authorize(fingerprint)).then(
        (ok) => {
          log(`${ok ? "accepted" : "refused"} ${who}: client certificate ${fingerprint.slice(0, 16)}…${ok ? "" : " is not the paired client"}`);
          if (ok) done(true);
          else done(false, 403, "not the paired client");
        },
        (error: unknown) => {
          log(`refused ${who}: cannot check the pairing: ${error instanceof Error ? error.message : String(error)}`);
          done(false, 503, "pairing check failed");
        },
      );
    },
  });

  wss.on("connection", (ws, req) => {
    const socket = req.socket as TLSSocket;
    const who = `${socket.remoteAddress}:${socket.remotePort}`;
    let session: Session | null = null;
    let queue = Promise.resolve();
    const stats = { sent: 0 };
    const fail = (error: unknown) => {
      const e = error instanceof ReplicationError ? error : new ReplicationError("AGENT_ERROR", `agent: ${error instanceof Error ? error.message : String(error)}`);
      log(`${who}: ${e.code}: ${e.message}`);
      if (ws.readyState === ws.OPEN) ws.send(encode({ type: Type.Error, body: { code: e.code, message: e.message } }), () => ws.close(1011));
    };
    ws.on("message", (data: Buffer, isBinary) => {
      queue = queue.then(async () => {
        if (!isBinary) throw new ReplicationError("PROTOCOL_MALFORMED", "protocol: text message");
        const frame = decode(data);
        if (!session) {
          if (frame.type !== Type.Hello) throw new ReplicationError("PROTOCOL_MALFORMED", "protocol: expected HELLO first");
          session = await openSession(frame.body, socket, options, who, log);
          const sizes = session.volumes.map((v) => ({ deviceName: v.deviceName, bytes: v.volume.size }));
          const proof = options.pairingCode !== undefined ? pairingProof(options.pairingCode, socket, "agent") : undefined;
          await send(ws, { type: Type.Ready, body: { version: VERSION, volumes: sizes, proof } });
          return;
        }
        if (frame.type === Type.Group) await answerGroup(ws, session, frame);
        else if (frame.type === Type.Digests) await answerBatch(ws, session, frame, stats);
        else throw new ReplicationError("PROTOCOL_MALFORMED", `protocol: unexpected message ${frame.type}`);
      }).catch(fail);
    });
    ws.on("close", () => {
      log(`${who} disconnected; ${stats.sent} bytes of data sent`);
      void queue.finally(() => Promise.all(session?.volumes.map((v) => v.volume.close()) ?? []));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function openSession(body: Record<string, unknown>, socket: TLSSocket, options: AgentOptions, who: string, log: (line: string) => void): Promise<Session> {
  if (options.pairingCode !== undefined) {
    const expected = pairingProof(options.pairingCode, socket, "client");
    if (body.proof !== expected) {
      log(`refused ${who}: wrong pairing code`);
      throw new ReplicationError("PAIRING_REFUSED", "agent: the pairing code does not match: start both ends with the same --pairing-code");
    }
  }
  const wanted = Array.isArray(body.volumes) ? (body.volumes as { device?: unknown; localBytes?: unknown }[]) : [];
  const volumes: Session["volumes"] = [];
  try {
    await openVolumes(wanted, volumes, options);
  } catch (error) {
    // The session never starts: close what it opened.
    await Promise.all(volumes.map((v) => v.volume.close()));
    throw error;
  }
  const mbps = typeof body.throttleMbps === "number" && body.throttleMbps > 0 ? body.throttleMbps : 0;
  log(`${who}: session for ${volumes.map((v) => `${v.deviceName} (${v.size} bytes)`).join(", ")}${mbps ? `, throttled to ${mbps} Mbps` : ""}`);
  return { volumes, throttle: new Throttle(mbps) };
}

async function openVolumes(wanted: { device?: unknown; localBytes?: unknown }[], volumes: Session["volumes"], options: AgentOptions): Promise<void> {
  for (const w of wanted) {
    const served = options.volumes.find((v) => v.deviceName === w.device);
    if (!served || typeof w.localBytes !== "number" || w.localBytes <= 0) {
      throw new ReplicationError("UNKNOWN_VOLUME", `agent: this Recovery Instance has no volume ${String(w.device)} (it serves ${options.volumes.map((v) => v.deviceName).join(", ")})`);
    }
    const volume = await openVolume(served.path, "read", "agent");
    volumes.push({ volume, size: Math.min(volume.size, w.localBytes), deviceName: served.deviceName });
    if (w.localBytes < volume.size) await checkTailZero(volume, w.localBytes, served.deviceName);
  }
}
