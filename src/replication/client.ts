/*
 * The client's receiver. A pass sends the digests of the local disk's leaves, batch by batch (a
 * bounded window per volume), and writes what the agent answers: DATA whose sha256 is checked
 * before it is written (a corrupt frame never lands), ZERO runs. A pass ends with a flush
 * (fdatasync); then a verification pass re-reads the local disk and compares again: anything the
 * agent still sends is a mismatch, repaired and reported. A dropped connection reconnects with
 * backoff and reruns the pass; equal leaves are skipped, so data already written is not re-sent.
 * Continuous mode repeats passes until `finishSignal`, then makes a final pass and verification.
 */
import { WebSocket } from "ws";
import type { TLSSocket } from "node:tls";
import { decode, encode, LEAF_SIZE, MAX_FRAME, MAX_JSON, Type, VERSION, type Frame } from "./codec.js";
import { ReplicationError } from "./errors.js";
import { fingerprintOf, type TlsIdentity } from "./identity.js";
import { digest, digestsOf, groupDigest, zeroDigest } from "./leaves.js";
import { pairingProof } from "./pairing-code.js";
import { openVolume, type Volume } from "./volume-file.js";
import { setTimeout as delay } from "node:timers/promises";

export type Phase = "copy" | "verify" | "continuous";

export type ReplicationEvent =
  | { type: "connected"; address: string }
  | {
      type: "progress";
      volume: string;
      phase: Phase;
      totalBytes: number;
      hashedBytes: number;
      sentBytes: number;
      skippedEqualBytes: number;
      skippedZeroBytes: number;
      bytesPerSecond: number;
      etaSeconds?: number;
      lagSeconds?: number;
    }
  | { type: "reconnecting"; attempt: number; delayMs: number; reason: string }
  | { type: "verified"; volume: string; mismatchesRepaired: number }
  | { type: "pass-complete"; pass: number; phase: Phase };

export interface ReplicateOptions {
  host: string;
  port: number;
  identity: TlsIdentity;
  agentFingerprint?: string;
  pairingCode?: string;
  volumes: { recoveryDevice: string; localPath: string; localBytes: number; recoveryBytes: number }[];
  throttleMbps?: number;
  mode: "once" | "continuous";
  finishSignal?: AbortSignal;
  signal?: AbortSignal;
  onEvent?: (event: ReplicationEvent) => void;
  reconnect?: { attempts: number; baseDelayMs: number };
  /** Pause between passes in continuous mode. */
  intervalMs?: number;
  /** Leaves per DIGESTS batch, and batches in flight per volume: the memory bound. */
  batchLeaves?: number;
  window?: number;
}

export interface ReplicationSummary {
  totalBytes: number;
  sentBytes: number;
  skippedEqualBytes: number;
  skippedZeroBytes: number;
  /** Message bytes both ways (frames, without TLS/WebSocket overhead), and each way. */
  wireBytes: number;
  wireBytesIn: number;
  wireBytesOut: number;
  mismatchesRepaired: number;
  passes: number;
}

interface PassCounts {
  sent: number;
  equal: number;
  zero: number;
  /** Bytes the agent sent as zero runs (the local leaf was not zero). */
  zeroWritten: number;
  /** First leaves of the batches that received writes: the only ones a verification must re-read. */
  written: Set<number>;
}

/** Errors after which trying again cannot help. */
const FATAL = new Set(["AGENT_IMPOSTOR", "PAIRING_REFUSED", "TAIL_NOT_ZERO", "UNKNOWN_VOLUME", "TARGET_BUSY", "IO_ERROR", "PROTOCOL_VERSION", "VERIFY_MISMATCH", "CANCELLED", "TLS_VERSION"]);

class Connection {
  readonly ws: WebSocket;
  wireBytesIn = 0;
  wireBytesOut = 0;
  private handler: ((frame: Frame) => void) | null = null;
  private closedWith: ReplicationError | null = null;
  private onClose: ((error: ReplicationError) => void)[] = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on("message", (data: Buffer) => {
      this.wireBytesIn += data.length;
      let frame: Frame;
      try {
        frame = decode(data);
      } catch (error) {
        this.fail(error as ReplicationError);
        return;
      }
      if (frame.type === Type.Error) this.fail(new ReplicationError(frame.body.code, frame.body.message));
      else this.handler?.(frame);
    });
    ws.on("close", () => this.fail(new ReplicationError("CONNECTION_LOST", "the connection to the agent was lost")));
    ws.on("error", (error) => this.fail(new ReplicationError("CONNECTION_LOST", `the connection to the agent failed: ${error.message}`, { cause: error })));
  }

  fail(error: ReplicationError): void {
    if (this.closedWith) return;
    this.closedWith = error;
    for (const f of this.onClose) f(error);
    this.ws.terminate();
  }

  closed(): Promise<never> {
    return new Promise((_, reject) => {
      if (this.closedWith) reject(this.closedWith);
      else this.onClose.push(reject);
    });
  }

  setHandler(handler: (frame: Frame) => void): void {
    this.handler = handler;
  }

  send(frame: Frame): Promise<void> {
    const data = encode(frame);
    this.wireBytesOut += data.length;
    return new Promise((resolve, reject) => this.ws.send(data, { binary: true }, (error) => (error ? reject(new ReplicationError("CONNECTION_LOST", `sending to the agent: ${error.message}`)) : resolve())));
  }

  static open(options: ReplicateOptions): Promise<{ connection: Connection; socket: TLSSocket }> {
    const host = options.host.includes(":") ? `[${options.host}]` : options.host;
    const address = `${host}:${options.port}`;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`wss://${address}/failback`, {
        cert: options.identity.certPem,
        key: options.identity.keyPem,
        minVersion: "TLSv1.3",
        // The agent's certificate is self-signed: it is pinned by fingerprint at "upgrade" instead.
        rejectUnauthorized: false,
        perMessageDeflate: false,
        maxPayload: MAX_FRAME + MAX_JSON,
        handshakeTimeout: 15_000,
      });
      let socket: TLSSocket | null = null;
      ws.once("upgrade", (res) => {
        socket = res.socket as TLSSocket;
        const cert = socket.getPeerCertificate();
        const fingerprint = cert?.raw ? fingerprintOf(cert.raw) : "";
        if (options.agentFingerprint && fingerprint !== options.agentFingerprint) {
          ws.terminate();
          reject(new ReplicationError("AGENT_IMPOSTOR", `the agent at ${address} presented certificate ${fingerprint.slice(0, 16)}…, not the paired agent's ${options.agentFingerprint.slice(0, 16)}…: nothing was sent; check --agent-address`));
        }
      });
      ws.once("open", () => resolve({ connection: new Connection(ws), socket: socket ?? ((ws as unknown as { _socket: TLSSocket })._socket) }));
      ws.once("unexpected-response", (_req, res) => {
        ws.terminate();
        const code = res.statusCode === 401 || res.statusCode === 403 ? "PAIRING_REFUSED" : "AGENT_UNREACHABLE";
        reject(new ReplicationError(code, code === "PAIRING_REFUSED" ? `the agent at ${address} refused this client (HTTP ${res.statusCode}): it is paired with another client; run the client again so it publishes its fingerprint, or restart the agent` : `the agent at ${address} answered HTTP ${res.statusCode}`));
      });
      ws.once("error", (error: NodeJS.ErrnoException) => {
        const tls = /version|protocol/i.test(error.message) && /SSL|TLS/i.test(error.message);
        reject(new ReplicationError(tls ? "TLS_VERSION" : "AGENT_UNREACHABLE", `cannot reach the agent at ${address}: ${error.code ?? error.message}${tls ? " (TLS 1.3 is required)" : "; is failback-agent running there, and TCP " + options.port + " open?"}`, { cause: error }));
      });
    });
  }
}

interface LocalVolume {
  index: number;
  device: string;
  volume: Volume;
  size: number;
}

async function handshake(options: ReplicateOptions, locals: LocalVolume[]): Promise<Connection> {
  const { connection, socket } = await Connection.open(options);
  const ready = new Promise<Frame>((resolve) => connection.setHandler(resolve));
  const proof = options.pairingCode !== undefined ? pairingProof(options.pairingCode, socket, "client") : undefined;
  await connection.send({
    type: Type.Hello,
    version: VERSION,
    body: { volumes: locals.map((l) => ({ device: l.device, localBytes: l.size })), throttleMbps: options.throttleMbps ?? 0, proof },
  });
  const frame = await Promise.race([ready, connection.closed()]);
  if (frame.type !== Type.Ready) throw new ReplicationError("PROTOCOL_MALFORMED", "protocol: expected READY");
  if (options.pairingCode !== undefined && frame.body.proof !== pairingProof(options.pairingCode, socket, "agent")) {
    connection.fail(new ReplicationError("AGENT_IMPOSTOR", "the agent does not know the pairing code"));
    throw new ReplicationError("AGENT_IMPOSTOR", `the agent at ${options.host}:${options.port} could not prove the pairing code: nothing was sent; check --agent-address and --pairing-code`);
  }
  return connection;
}

async function runPass(
  connection: Connection,
  locals: LocalVolume[],
  phase: Phase,
  options: ReplicateOptions,
  lagSince: number | undefined,
  only?: Set<number>[],
): Promise<PassCounts[]> {
  const batchLeaves = options.batchLeaves ?? 256;
  const window = options.window ?? 4;
  const started = Date.now();
  const perVolume = locals.map(() => ({
    counts: { sent: 0, equal: 0, zero: 0, zeroWritten: 0, written: new Set<number>() } as PassCounts,
    hashed: 0,
    writes: Promise.resolve(),
    /** Leaves the agent answered (DATA or ZERO) in the batches in flight. */
    answered: new Set<number>(),
    pending: new Map<number, { first: number; digests: Buffer[]; resolve: () => void }>(),
  }));

  // What this pass reads of each volume: all of it, or only the batches to verify.
  const totals = locals.map((local, i) => {
    const set = only?.[i];
    if (!set) return local.size;
    let bytes = 0;
    for (const first of set) bytes += Math.max(0, Math.min(batchLeaves * LEAF_SIZE, local.size - first * LEAF_SIZE));
    return bytes;
  });
  const emit = (i: number) => {
    const v = perVolume[i]!;
    const local = { size: totals[i]!, device: locals[i]!.device };
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? v.hashed / seconds : 0;
    options.onEvent?.({
      type: "progress",
      volume: local.device,
      phase,
      totalBytes: local.size,
      hashedBytes: v.hashed,
      sentBytes: v.counts.sent,
      skippedEqualBytes: v.counts.equal,
      skippedZeroBytes: v.counts.zero,
      bytesPerSecond: rate,
      etaSeconds: rate > 0 ? (local.size - v.hashed) / rate : undefined,
      lagSeconds: lagSince === undefined ? undefined : (Date.now() - lagSince) / 1000,
    });
  };

  connection.setHandler((frame) => {
    if (frame.type !== Type.Data && frame.type !== Type.Zero && frame.type !== Type.BatchDone && frame.type !== Type.NeedLeaves) return;
    const v = perVolume[frame.volume];
    const local = locals[frame.volume];
    if (!v || !local) return connection.fail(new ReplicationError("PROTOCOL_MALFORMED", `protocol: no volume ${frame.volume}`));
    if (frame.type === Type.Data) {
      const expected = Math.min(LEAF_SIZE, local.size - frame.leaf * LEAF_SIZE);
      if (frame.payload.length !== expected || !digest(frame.payload).equals(frame.sha256)) {
        return connection.fail(new ReplicationError("CORRUPT_FRAME", `a block for ${local.device} at leaf ${frame.leaf} failed its checksum; it was not written`));
      }
      const payload = Buffer.from(frame.payload);
      v.writes = v.writes.then(() => local.volume.write(frame.leaf * LEAF_SIZE, payload));
      v.counts.sent += payload.length;
      v.answered.add(frame.leaf);
      v.counts.written.add(frame.leaf - (frame.leaf % batchLeaves));
      return;
    }
    if (frame.type === Type.Zero) {
      for (let leaf = frame.leaf; leaf < frame.leaf + frame.count; leaf += 1) {
        const length = Math.min(LEAF_SIZE, local.size - leaf * LEAF_SIZE);
        if (length <= 0) return connection.fail(new ReplicationError("PROTOCOL_MALFORMED", `protocol: zero run beyond ${local.device}`));
        v.writes = v.writes.then(() => local.volume.write(leaf * LEAF_SIZE, Buffer.alloc(length)));
        v.counts.zero += length;
        v.counts.zeroWritten += length;
        v.answered.add(leaf);
        v.counts.written.add(leaf - (leaf % batchLeaves));
      }
      return;
    }
    const batch = v.pending.get(frame.batch);
    if (!batch) return connection.fail(new ReplicationError("PROTOCOL_MALFORMED", `protocol: unknown batch ${frame.batch}`));
    if (frame.type === Type.NeedLeaves) {
      connection.send({ type: Type.Digests, volume: frame.volume, batch: frame.batch, first: batch.first, digests: batch.digests }).catch((error: unknown) => connection.fail(error as ReplicationError));
      return;
    }
    v.pending.delete(frame.batch);
    batch.resolve();
  });

  const volumePass = async (i: number): Promise<PassCounts> => {
    const v = perVolume[i]!;
    const local = locals[i]!;
    const leaves = Math.ceil(local.size / LEAF_SIZE);
    const inFlight: Promise<void>[] = [];
    let batchNo = 0;
    for (let first = 0; first < leaves; first += batchLeaves) {
      options.signal?.throwIfAborted();
      if (only && !only[i]?.has(first)) continue;
      const count = Math.min(batchLeaves, leaves - first);
      const chunk = await local.volume.read(first * LEAF_SIZE, Math.min(count * LEAF_SIZE, local.size - first * LEAF_SIZE));
      const digests = digestsOf(chunk);
      const readBytes = chunk.length;
      const id = batchNo++;
      const done = new Promise<void>((resolve) => v.pending.set(id, { first, digests, resolve }));
      inFlight.push(
        done.then(() => {
          // Leaves the agent did not answer were equal; the all-zero ones count as zero.
          for (let k = 0; k < digests.length; k += 1) {
            const len = Math.min(LEAF_SIZE, local.size - (first + k) * LEAF_SIZE);
            if (!v.answered.delete(first + k) && digests[k]!.equals(zeroDigest(len))) v.counts.zero += len;
          }
          v.hashed += readBytes;
          emit(i);
        }),
      );
      await connection.send({ type: Type.Group, volume: i, batch: id, first, count: digests.length, digest: groupDigest(digests) });
      if (inFlight.length >= window) await Promise.race([inFlight.shift()!, connection.closed()]);
    }
    await Promise.race([Promise.all(inFlight), connection.closed()]);
    await v.writes;
    await local.volume.flush();
    // Equal: everything neither sent as data nor zero, known once the pass is complete.
    v.counts.equal = Math.max(0, local.size - v.counts.sent - v.counts.zero);
    emit(i);
    return v.counts;
  };

  return Promise.race([Promise.all(locals.map((_, i) => volumePass(i))), connection.closed()]);
}

/** Waits `ms`, or less when `signal` aborts (an abort ends the wait, it is not an error here). */
const sleep = (ms: number, signal?: AbortSignal): Promise<void> => delay(ms, undefined, { signal }).catch(() => undefined);

export async function replicate(options: ReplicateOptions): Promise<ReplicationSummary> {
  const locals: LocalVolume[] = [];
  try {
    for (const [index, v] of options.volumes.entries()) {
      const volume = await openVolume(v.localPath, "write", "client");
      locals.push({ index, device: v.recoveryDevice, volume, size: Math.min(v.localBytes, v.recoveryBytes, volume.size) });
    }
    return await replicateVolumes(options, locals);
  } finally {
    await Promise.all(locals.map((l) => l.volume.close().catch(() => undefined)));
  }
}

async function replicateVolumes(options: ReplicateOptions, locals: LocalVolume[]): Promise<ReplicationSummary> {
  const attempts = options.reconnect?.attempts ?? 6;
  const baseDelayMs = options.reconnect?.baseDelayMs ?? 500;
  let connection: Connection | null = null;
  const summary: ReplicationSummary = { totalBytes: locals.reduce((a, l) => a + l.size, 0), sentBytes: 0, skippedEqualBytes: 0, skippedZeroBytes: 0, wireBytes: 0, wireBytesIn: 0, wireBytesOut: 0, mismatchesRepaired: 0, passes: 0 };
  const account = (c: Connection) => {
    summary.wireBytesIn += c.wireBytesIn;
    summary.wireBytesOut += c.wireBytesOut;
    summary.wireBytes = summary.wireBytesIn + summary.wireBytesOut;
  };

  // Runs one pass, reconnecting (and rerunning the pass) when the link drops.
  const pass = async (phase: Phase, lagSince?: number, only?: Set<number>[]): Promise<PassCounts[]> => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        if (options.signal?.aborted) throw new ReplicationError("CANCELLED", "cancelled");
        if (!connection) {
          connection = await handshake(options, locals);
          options.onEvent?.({ type: "connected", address: `${options.host}:${options.port}` });
        }
        const counts = await runPass(connection, locals, phase, options, lagSince, only);
        summary.passes += 1;
        return counts;
      } catch (error) {
        const e = error instanceof ReplicationError ? error : new ReplicationError("AGENT_UNREACHABLE", String(error), { cause: error });
        if (connection) {
          account(connection);
          connection.fail(e);
          connection = null;
        }
        if (options.signal?.aborted) throw new ReplicationError("CANCELLED", "cancelled");
        if (FATAL.has(e.code) || attempt >= attempts) {
          if (e.code === "CONNECTION_LOST" || e.code === "CORRUPT_FRAME") throw new ReplicationError("AGENT_UNREACHABLE", `${e.message}; gave up after ${attempt} attempts`, { cause: e });
          throw e;
        }
        const delayMs = Math.min(baseDelayMs * 2 ** (attempt - 1), 15_000);
        options.onEvent?.({ type: "reconnecting", attempt, delayMs, reason: e.message });
        await sleep(delayMs, options.signal);
      }
    }
  };

  // A copy (or continuous) pass, then verification passes until one finds nothing to repair.
  const verifiedPass = async (phase: Phase, lagSince?: number): Promise<void> => {
    const counts = await pass(phase, lagSince);
    summary.sentBytes += counts.reduce((a, c) => a + c.sent, 0);
    if (summary.passes === 1) {
      summary.skippedEqualBytes = counts.reduce((a, c) => a + c.equal, 0);
      summary.skippedZeroBytes = counts.reduce((a, c) => a + c.zero, 0);
    }
    // A pass that changed nothing was itself a full comparison of both sides' digests.
    if (counts.every((c) => c.sent === 0 && c.zeroWritten === 0)) {
      for (const l of locals) options.onEvent?.({ type: "verified", volume: l.device, mismatchesRepaired: summary.mismatchesRepaired });
      return;
    }
    // Batches without writes were compared (group digest) in the pass itself; only the written
    // ones are read back and compared again.
    let toCheck = counts.map((c) => c.written);
    for (let round = 0; ; round += 1) {
      const check = await pass("verify", undefined, toCheck);
      toCheck = check.map((c) => c.written);
      const mismatches = check.map((c) => c.sent + c.zeroWritten);
      if (mismatches.every((m) => m === 0)) {
        for (const l of locals) options.onEvent?.({ type: "verified", volume: l.device, mismatchesRepaired: summary.mismatchesRepaired });
        return;
      }
      summary.mismatchesRepaired += mismatches.reduce((a, m) => a + Math.ceil(m / LEAF_SIZE), 0);
      if (round >= 2) throw new ReplicationError("VERIFY_MISMATCH", `verification still finds differences after ${round + 1} repairs: the local disk may be failing`);
    }
  };

  try {
    await verifiedPass("copy");
    options.onEvent?.({ type: "pass-complete", pass: 1, phase: "copy" });
    if (options.mode === "continuous") {
      let lastPass = Date.now();
      for (let n = 2; !options.finishSignal?.aborted; n += 1) {
        await sleep(options.intervalMs ?? 2_000, options.finishSignal);
        if (options.signal?.aborted) throw new ReplicationError("CANCELLED", "cancelled");
        const started = Date.now();
        await verifiedPass("continuous", lastPass);
        lastPass = started;
        options.onEvent?.({ type: "pass-complete", pass: n, phase: "continuous" });
      }
      // The failback was launched: one final pass and verification over the settled volumes.
      await verifiedPass("continuous", lastPass);
      options.onEvent?.({ type: "pass-complete", pass: summary.passes, phase: "continuous" });
    }
    return summary;
  } finally {
    const open = connection as Connection | null;
    if (open) {
      account(open);
      open.ws.close(1000);
    }
  }
}
