/*
 * The agent's server: TLS 1.3 only, WebSocket framing, and nothing served before the client is
 * authenticated (its certificate's fingerprint accepted by `authorize`, or, in manual mode, its
 * proof of the pairing code bound to this TLS session). Each connection is handed, as a FrameLink,
 * to the transport-free engine in agent-session.ts.
 *
 * Closing ends every session and waits for each to close what it opened (its volumes, and the
 * write tracker's tracefs instance with the `cat` that reads it): a process that exits before then
 * leaves the instance in the kernel until the next agent starts and removes it.
 */
import { createServer, type Server } from "node:https";
import type { TLSSocket } from "node:tls";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer } from "ws";
import { MAX_FRAME, MAX_JSON } from "./codec.js";
import { serveSession, type ServedVolume } from "./agent-session.js";
import { fingerprintOf, type TlsIdentity } from "./identity.js";
import { wsLink } from "./link.js";
import { pairingProof } from "./pairing-code.js";
import { openVolume, type BlockSource } from "./volume-file.js";

export interface AgentOptions {
  host: string;
  port: number;
  /** The volumes served; `open` overrides opening `path` (an in-memory disk in tests). */
  volumes: { deviceName: string; path: string; open?: () => Promise<BlockSource> }[];
  identity: TlsIdentity;
  authorize: (clientFingerprint: string) => boolean | Promise<boolean>;
  pairingCode?: string;
  log?: (line: string) => void;
  /** How long a client may stay silent (CLIENT_SILENCE_MS by default; tests make it short). */
  clientSilenceMs?: number;
}

/**
 * A client pings every 15 s, even while it holds reading back, and answers the agent's pings. One
 * from which nothing came for one to two of these periods has vanished (a power cut, a path that
 * died without a FIN or RST): its session, trace instance and volumes are let go then, where TCP's
 * keepalive would take 11 minutes, and its retransmissions, with data in flight, about 15.
 */
const CLIENT_SILENCE_MS = 60_000;

export interface Agent {
  port: number;
  /**
   * Stops listening, ends every session, and waits until each has closed what it opened, for at
   * most `waitMs` (default 10 s); says how many sessions there were and how many had not finished.
   */
  close(options?: { waitMs?: number }): Promise<{ sessions: number; unfinished: number }>;
}

/** How long close() waits for the sessions' cleanup by default. */
const CLOSE_WAIT_MS = 10_000;

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
  // Every TCP connection, from its first byte: one whose TLS handshake has not finished is neither a
  // WebSocket client nor an HTTP connection, so closeAllConnections() leaves it open, and
  // server.close() would wait for it until its handshake times out (120 s by default).
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
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

  // Sessions until they have closed what they opened (serveSession resolves only then).
  const sessions = new Set<Promise<void>>();
  const served: ServedVolume[] = options.volumes.map((v) => ({ deviceName: v.deviceName, path: v.path, open: v.open ?? (() => openVolume(v.path, "read", "agent")) }));
  wss.on("connection", (ws, req) => {
    const socket = req.socket as TLSSocket;
    // A client that vanished without a FIN or RST (power cut, a path that died) would otherwise
    // keep its session, trace instance and open volumes here for good: the kernel probes idle links.
    socket.setKeepAlive(true, 30_000);
    const who = `${socket.remoteAddress}:${socket.remotePort}`;
    const pairing = options.pairingCode !== undefined ? { expected: pairingProof(options.pairingCode, socket, "client"), mine: pairingProof(options.pairingCode, socket, "agent") } : undefined;
    const link = wsLink(ws, { heartbeatMs: options.clientSilenceMs ?? CLIENT_SILENCE_MS, socket });
    const session = serveSession(link, { volumes: served, log, who, pairing }).then(
      ({ sentBytes, compressed }) => {
        const packed = compressed.volumeBytes > 0 ? ` (${compressed.volumeBytes} compressed into ${compressed.wireBytes})` : "";
        log(`${who} disconnected; ${sentBytes} bytes of data sent${packed}`);
      },
      (error: unknown) => log(`${who}: closing the session failed: ${error instanceof Error ? error.message : String(error)}`),
    );
    sessions.add(session);
    void session.then(() => sessions.delete(session));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: async ({ waitMs = CLOSE_WAIT_MS } = {}) => {
      const open = [...sessions];
      const closed = new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      let finished = 0;
      const cleanup = Promise.all([closed, ...open.map((s) => s.then(() => void (finished += 1)))]);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)));
      await Promise.race([cleanup, late]);
      clearTimeout(timer);
      return { sessions: open.length, unfinished: open.length - finished };
    },
  };
}
