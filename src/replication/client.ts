/*
 * The client's receiver: opens the local disks and the link, and runs passes (client-pass.ts)
 * until the volumes are verified. A pass ends with a flush (fdatasync); then a verification pass
 * reads back and hashes the batches that received writes and compares them with the agent's;
 * anything the agent still sends is a mismatch, repaired and reported. A dropped connection
 * reconnects with backoff and reruns the pass; equal leaves are skipped, so data already written is
 * not re-sent. Continuous mode repeats passes until `finishSignal`, then makes a final pass and
 * verification.
 *
 * The engine (`replicateOver`) takes block sinks and a function that opens a FrameLink; `replicate`
 * wires it to the local disks and to WebSocket over TLS 1.3, with the agent's certificate pinned.
 */
import { WebSocket } from "ws";
import type { TLSSocket } from "node:tls";
import { MAX_FRAME, MAX_JSON, Type, VERSION, type Frame } from "./codec.js";
import { Connection } from "./client-connection.js";
import { passSlab, runPass, settledCount, startProgress, STALL_MS, type LocalVolume, type PassCounts, type Phase, type ReplicationEvent } from "./client-pass.js";
import { ReplicationError } from "./errors.js";
import { fingerprintOf, type TlsIdentity } from "./identity.js";
import { wsLink, type FrameLink } from "./link.js";
import { pairingProof } from "./pairing-code.js";
import { openVolume, sysfsOf, type BlockSink } from "./volume-file.js";
import { readFile, stat } from "node:fs/promises";
import type { Stats } from "node:fs";

export type { Phase, ReplicationEvent } from "./client-pass.js";

export interface ReplicateOptions {
  host: string;
  port: number;
  identity: TlsIdentity;
  agentFingerprint?: string;
  pairingCode?: string;
  /** The local disks; `open` overrides opening `localPath` for writing (an in-memory disk in tests). */
  volumes: { recoveryDevice: string; localPath: string; localBytes: number; recoveryBytes: number; open?: () => Promise<BlockSink> }[];
  /** The bandwidth limit in Mbps (0 = none); a function is asked every second, and a change is
   * sent to the agent (the console's setting may change during days of replication). */
  throttleMbps?: number | (() => number);
  mode: "once" | "continuous";
  finishSignal?: AbortSignal;
  signal?: AbortSignal;
  onEvent?: (event: ReplicationEvent) => void;
  reconnect?: { attempts: number; baseDelayMs: number };
  /** Pause between passes in continuous mode. */
  intervalMs?: number;
  /** Leaves per batch (GROUP / DIGESTS), and batches in flight per volume. */
  batchLeaves?: number;
  window?: number;
  /** Accept brotli-compressed DATA (the agent uses it only when it pays); default true. */
  compression?: boolean;
  /** How often the client pings the agent; a period without an answer drops the link (link.ts). */
  heartbeatMs?: number;
  /** Silence from the agent while it owes answers after which the link is dropped (default 2 min),
   * and the time a local write or flush may take before the run ends with LOCAL_DISK_STALLED. */
  stallMs?: number;
}

/** Opens one link to the agent; `proof` binds a pairing code to it (manual pairing). */
export type Connect = () => Promise<{ link: FrameLink; proof?: (role: "client" | "agent") => string }>;

/** What the engine needs besides a way to connect. */
export type EngineOptions = Omit<ReplicateOptions, "host" | "port" | "identity" | "agentFingerprint" | "volumes"> & { address: string };

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

/** A silent path is dropped after 15 to 30 s, and the pass goes on over a new connection. */
const HEARTBEAT_MS = 15_000;

/** Errors after which trying again cannot help. */
const FATAL = new Set(["AGENT_IMPOSTOR", "PAIRING_REFUSED", "TAIL_NOT_ZERO", "UNKNOWN_VOLUME", "VOLUME_SIZE_MISMATCH", "TARGET_BUSY", "IO_ERROR", "LOCAL_DISK_STALLED", "PROTOCOL_VERSION", "VERIFY_MISMATCH", "CANCELLED", "TLS_VERSION"]);

/** What the agent's answer to the WebSocket upgrade means (agent.ts sets these statuses). */
function unexpectedResponse(status: number, address: string): ReplicationError {
  if (status === 401 || status === 403) {
    return new ReplicationError(
      "PAIRING_REFUSED",
      `the agent at ${address} refused this client (HTTP ${status}): it is paired with another client; run the client again so it publishes its fingerprint, or restart the agent (one started with --client-fingerprint serves only that client)`,
    );
  }
  if (status === 503) {
    // Tried again like a network fault: DRS may answer the agent's next look.
    return new ReplicationError(
      "AGENT_PAIRING_CHECK_FAILED",
      `the agent at ${address} could not check the pairing with DRS (HTTP 503): its AWS credentials were refused or it cannot reach DRS; its log says which: renew the agent's credentials (it needs drs:ListTagsForResource) or fix its route to DRS, then run the client again`,
    );
  }
  return new ReplicationError("AGENT_UNREACHABLE", `the agent at ${address} answered HTTP ${status}`);
}

/** Opens a WebSocket over TLS 1.3 to the agent; sends nothing until its certificate is pinned. */
function openWebSocket(options: ReplicateOptions): Promise<{ link: FrameLink; proof: (role: "client" | "agent") => string }> {
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
    ws.once("open", () => {
      const tls = socket ?? (ws as unknown as { _socket: TLSSocket })._socket;
      // wsLink listens for "error" from here on; until then the handlers below report it.
      resolve({ link: wsLink(ws, { heartbeatMs: options.heartbeatMs ?? HEARTBEAT_MS, socket: tls }), proof: (role) => pairingProof(options.pairingCode ?? "", tls, role) });
    });
    ws.once("unexpected-response", (_req, res) => {
      ws.terminate();
      reject(unexpectedResponse(res.statusCode ?? 0, address));
    });
    ws.once("error", (error: NodeJS.ErrnoException) => {
      const tls = /version|protocol/i.test(error.message) && /SSL|TLS/i.test(error.message);
      reject(new ReplicationError(tls ? "TLS_VERSION" : "AGENT_UNREACHABLE", `cannot reach the agent at ${address}: ${error.code ?? error.message}${tls ? " (TLS 1.3 is required)" : "; is failback-agent running there, and TCP " + options.port + " open?"}`, { cause: error }));
    });
  });
}

/** `work`, or CANCELLED as soon as `signal` aborts; what `work` yields after that goes to `discard`. */
function cancellable<T>(work: Promise<T>, signal: AbortSignal | undefined, discard: (value: T) => void): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      reject(new ReplicationError("CANCELLED", "cancelled"));
      work.then(discard, () => undefined);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

async function handshake(connect: Connect, options: EngineOptions, locals: LocalVolume[], limitMbps: number): Promise<Connection> {
  // A cancel ends a connection attempt too (a TLS handshake may wait 15 s, HELLO for ever).
  const { link, proof } = await cancellable(connect(), options.signal, (late) => late.link.terminate());
  const connection = new Connection(link);
  const cancel = () => connection.fail(new ReplicationError("CANCELLED", "cancelled"));
  options.signal?.addEventListener("abort", cancel, { once: true });
  try {
    return await hello(connection, proof, options, locals, limitMbps);
  } catch (error) {
    // The caller never sees this connection: it is closed here.
    connection.fail(error instanceof ReplicationError ? error : new ReplicationError("AGENT_UNREACHABLE", String(error), { cause: error }));
    throw error;
  } finally {
    options.signal?.removeEventListener("abort", cancel);
  }
}

async function hello(connection: Connection, proof: ((role: "client" | "agent") => string) | undefined, options: EngineOptions, locals: LocalVolume[], limitMbps: number): Promise<Connection> {
  const ready = new Promise<Frame>((resolve) => connection.setHandler(resolve));
  const manual = options.pairingCode !== undefined && proof !== undefined;
  connection.send({
    type: Type.Hello,
    version: VERSION,
    body: {
      volumes: locals.map((l) => ({ device: l.device, localBytes: l.size, recoveryBytes: l.recoveryBytes })),
      throttleMbps: limitMbps,
      codecs: options.compression === false ? [] : ["brotli"],
      backlog: true,
      proof: manual ? proof("client") : undefined,
    },
  });
  // The agent reads its disk before READY (the page cache dropped, a fractional tail checked): a
  // disk that hangs there would hold this attempt, and every retry, for ever. Pings do not show it.
  const unwatch = connection.watch(() => true, options.stallMs ?? STALL_MS);
  const frame = await connection.whileOpen(ready).finally(unwatch);
  if (frame.type !== Type.Ready) throw new ReplicationError("PROTOCOL_MALFORMED", "protocol: expected READY");
  if (manual && frame.body.proof !== proof("agent")) {
    connection.fail(new ReplicationError("AGENT_IMPOSTOR", "the agent does not know the pairing code"));
    throw new ReplicationError("AGENT_IMPOSTOR", `the agent at ${options.address} could not prove the pairing code: nothing was sent; check --agent-address and --pairing-code`);
  }
  // Both ends replicate min(local, served) bytes: a volume served at another size than the plan
  // was made for would be copied in part (or beyond what the mapping checked) and pass as equal.
  const served = Array.isArray(frame.body.volumes) ? (frame.body.volumes as { bytes?: unknown }[]) : [];
  for (const local of locals) {
    const bytes = served[local.index]?.bytes;
    if (bytes !== local.recoveryBytes) {
      const error = new ReplicationError(
        "VOLUME_SIZE_MISMATCH",
        `the agent serves ${local.device} as ${typeof bytes === "number" ? `${bytes} bytes` : "no volume"}, but the Recovery Instance's volume is ${local.recoveryBytes} bytes: the agent's --volume ${local.device}=PATH names another disk; nothing was written`,
      );
      connection.fail(error);
      throw error;
    }
  }
  return connection;
}

function throttleNow(options: Pick<EngineOptions, "throttleMbps">): number {
  return (typeof options.throttleMbps === "function" ? options.throttleMbps() : options.throttleMbps) ?? 0;
}

/** How often a changed bandwidth limit is looked for. */
const THROTTLE_CHECK_MS = 1_000;

/**
 * Waits `ms`, or less when one of `signals` aborts (an abort ends the wait, it is not an error
 * here). A plain timeout rather than timers/promises, which tests' fake timers do not reach.
 */
function sleep(ms: number, ...signals: (AbortSignal | undefined)[]): Promise<void> {
  const watched = signals.filter((s) => s !== undefined);
  return new Promise((resolve) => {
    if (watched.some((s) => s.aborted)) return resolve();
    const done = () => {
      clearTimeout(timer);
      for (const s of watched) s.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    for (const s of watched) s.addEventListener("abort", done, { once: true });
  });
}

export async function replicate(options: ReplicateOptions): Promise<ReplicationSummary> {
  return replicateOver(() => openWebSocket(options), options.volumes, { ...options, address: `${options.host}:${options.port}` });
}

/** The engine: replicates into the given sinks over links that `connect` opens. */
export async function replicateOver(connect: Connect, volumes: ReplicateOptions["volumes"], options: EngineOptions): Promise<ReplicationSummary> {
  await refuseSharedTargets(volumes);
  const locals: LocalVolume[] = [];
  try {
    for (const [index, v] of volumes.entries()) {
      const sink = await (v.open ? v.open() : openVolume(v.localPath, "write", "client"));
      locals.push({ index, device: v.recoveryDevice, sink, size: Math.min(v.localBytes, v.recoveryBytes, sink.size), recoveryBytes: v.recoveryBytes });
    }
    return await replicateVolumes(connect, options, locals);
  } finally {
    // A FileHandle's close waits for the operations pending on it: a disk with one still under way
    // (it stopped answering, or the run was cancelled while it hung) is asked to close, and the run
    // ends without waiting for it.
    await Promise.all(
      locals.map((l) => {
        const closing = l.sink.close().catch(() => undefined);
        return (l.pending ?? 0) > 0 ? undefined : closing;
      }),
    );
  }
}

/**
 * Two volumes into one disk or file, under two names (a link, "./", a loop device and the file
 * behind it), would overwrite each other while each pass verified against its own agent volume in
 * turn: refused before anything is opened. O_EXCL refuses a block device opened twice, but not a
 * file, nor the file or disk behind a loop device.
 */
async function refuseSharedTargets(volumes: ReplicateOptions["volumes"]): Promise<void> {
  const seen = new Map<string, string>();
  for (const v of volumes) {
    if (v.open) continue;
    const info = await stat(v.localPath).catch(() => null);
    if (!info) continue;
    const key = await storageOf(info);
    const first = seen.get(key);
    if (first !== undefined) throw new ReplicationError("TARGET_USED_TWICE", `client: ${first} and ${v.localPath} are the same storage; each receives one volume, and nothing was written`);
    seen.set(key, v.localPath);
  }
}

/** What a target writes into: a file (dev:ino), a block device, or for a loop device what backs it. */
async function storageOf(info: Stats): Promise<string> {
  if (!info.isBlockDevice()) return `file ${info.dev}:${info.ino}`;
  const backing = (await readFile(`${sysfsOf(info.rdev)}/loop/backing_file`, "utf8").catch(() => "")).trim();
  const behind = backing ? await stat(backing).catch(() => null) : null;
  return behind ? storageOf(behind) : `device ${info.rdev}`;
}

async function replicateVolumes(connect: Connect, options: EngineOptions, locals: LocalVolume[]): Promise<ReplicationSummary> {
  const attempts = options.reconnect?.attempts ?? 6;
  const baseDelayMs = options.reconnect?.baseDelayMs ?? 500;
  let connection: Connection | null = null;
  const summary: ReplicationSummary = { totalBytes: locals.reduce((a, l) => a + l.size, 0), sentBytes: 0, skippedEqualBytes: 0, skippedZeroBytes: 0, wireBytes: 0, wireBytesIn: 0, wireBytesOut: 0, mismatchesRepaired: 0, passes: 0 };
  const account = (c: Connection) => {
    summary.wireBytesIn += c.wireBytesIn;
    summary.wireBytesOut += c.wireBytesOut;
    summary.wireBytes = summary.wireBytesIn + summary.wireBytesOut;
  };

  // Continuous passes: the group digests of the batches the previous pass found equal, which this
  // client, the disks' only writer, need not read again (client-pass.ts). A final pass reads all.
  const known = locals.map(() => new Map<number, Buffer>());
  // One set of read buffers for the whole replication: a buffer a failed attempt still reads into
  // comes back to it when that read ends.
  const slab = passSlab(locals.length, options.batchLeaves ?? 256);

  // A cancel ends the pass at once, even one waiting on an agent that does not answer.
  const cancel = () => connection?.fail(new ReplicationError("CANCELLED", "cancelled"));
  options.signal?.addEventListener("abort", cancel, { once: true });

  // A new bandwidth limit reaches the agent within a second. Each connection starts with the limit
  // its HELLO carried (`told`) and hears of any change after it, one made while it opened included.
  let announced = throttleNow(options);
  let told = announced;
  const tellThrottle = () => {
    const now = throttleNow(options);
    if (now !== announced) {
      announced = now;
      options.onEvent?.({ type: "throttle", mbps: now });
    }
    if (connection && !connection.failed && now !== told) {
      connection.send({ type: Type.Throttle, mbps: now });
      told = now;
    }
  };
  const throttleWatch = setInterval(tellThrottle, THROTTLE_CHECK_MS);
  throttleWatch.unref();

  // Runs one pass, reconnecting when the link drops; a new attempt goes on from the batches the
  // failed ones finished, and the count of attempts starts again whenever one made progress: a
  // long pass over a link that drops now and then goes on, a link that never carries a batch does not.
  const pass = async (phase: Phase, lagSince?: number, only?: Set<number>[], trust = false): Promise<PassCounts[]> => {
    const progress = startProgress(locals.length);
    /** Attempts in a row that finished no batch. */
    let fruitless = 0;
    for (let attempt = 1; ; attempt += 1) {
      const finished = settledCount(progress);
      try {
        if (options.signal?.aborted) throw new ReplicationError("CANCELLED", "cancelled");
        // A link that dropped between passes (continuous replication sleeps between them) is
        // replaced before the pass starts; that drop cost no pass anything.
        if (connection?.failed) {
          account(connection);
          connection = null;
        }
        if (!connection) {
          const limit = throttleNow(options);
          connection = await handshake(connect, options, locals, limit);
          told = limit;
          tellThrottle();
          options.onEvent?.({ type: "connected", address: options.address });
        }
        const settings = { batchLeaves: options.batchLeaves ?? 256, window: options.window ?? 16, slab, stallMs: options.stallMs, signal: options.signal, onEvent: options.onEvent };
        const counts = await runPass(connection, locals, phase, settings, lagSince, only, trust ? known : undefined, progress);
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
        fruitless = settledCount(progress) > finished ? 0 : fruitless + 1;
        if (FATAL.has(e.code) || fruitless >= attempts) {
          if (e.code === "CONNECTION_LOST" || e.code === "CORRUPT_FRAME") throw new ReplicationError("AGENT_UNREACHABLE", `${e.message}; gave up after ${fruitless} attempts in a row that finished nothing`, { cause: e });
          throw e;
        }
        const delayMs = Math.min(baseDelayMs * 2 ** Math.max(0, fruitless - 1), 15_000);
        options.onEvent?.({ type: "reconnecting", attempt, delayMs, reason: e.message });
        await sleep(delayMs, options.signal);
      }
    }
  };

  // A copy (or continuous) pass, which verifies what it wrote as it goes; then verification passes
  // over what that found and repaired, until one finds nothing more.
  const verifiedPass = async (phase: Phase, lagSince?: number, trust = false): Promise<void> => {
    const counts = await pass(phase, lagSince, undefined, trust);
    counts.forEach((c, i) => {
      for (const [first, group] of c.equalGroups) known[i]!.set(first, group);
      // A repaired batch is checked again below; until a pass finds it equal it is read.
      for (const first of c.repaired) known[i]!.delete(first);
    });
    summary.sentBytes += counts.reduce((a, c) => a + c.sent, 0);
    if (summary.passes === 1) {
      summary.skippedEqualBytes = counts.reduce((a, c) => a + c.equal, 0);
      summary.skippedZeroBytes = counts.reduce((a, c) => a + c.zero, 0);
    }
    // Leaves repaired in this pass, per volume: the verified event says which disk needed them.
    const repaired = counts.map((c) => c.repairedLeaves);
    // Batches without writes were compared (group digest) in the pass itself, and those with
    // writes were read back and compared in its verification lane; only repairs need another look.
    let toCheck = counts.map((c) => c.repaired);
    for (let round = 0; toCheck.some((set) => set.size > 0); round += 1) {
      if (round >= 3) throw new ReplicationError("VERIFY_MISMATCH", `verification still finds differences after ${round} repairs: the local disk may be failing`);
      const check = await pass("verify", undefined, toCheck);
      summary.sentBytes += check.reduce((a, c) => a + c.sent, 0);
      toCheck = check.map((c) => c.written);
      check.forEach((c, i) => (repaired[i]! += c.repairedLeaves));
    }
    summary.mismatchesRepaired += repaired.reduce((a, b) => a + b, 0);
    locals.forEach((l, i) => options.onEvent?.({ type: "verified", volume: l.device, mismatchesRepaired: repaired[i]! }));
  };

  try {
    // The lag is the age of what the last complete pass saw: the copy's from when it started.
    let lastPass = Date.now();
    await verifiedPass("copy");
    options.onEvent?.({ type: "pass-complete", pass: 1, phase: "copy" });
    if (options.mode === "continuous") {
      let n = 2;
      for (; !options.finishSignal?.aborted; n += 1) {
        // A launch ends the pause, and so does a cancel: Ctrl-C must not wait out the interval.
        await sleep(options.intervalMs ?? 2_000, options.finishSignal, options.signal);
        if (options.signal?.aborted) throw new ReplicationError("CANCELLED", "cancelled");
        // Launched during the pause: straight to the final pass, not one more trusting pass first.
        if (options.finishSignal?.aborted) break;
        const started = Date.now();
        await verifiedPass("continuous", lastPass, true);
        lastPass = started;
        options.onEvent?.({ type: "pass-complete", pass: n, phase: "continuous" });
      }
      // The failback was launched: one final pass and verification over the settled volumes,
      // reading the local disks in full rather than trusting what earlier passes found.
      await verifiedPass("continuous", lastPass);
      options.onEvent?.({ type: "pass-complete", pass: n, phase: "continuous" });
    }
    return summary;
  } finally {
    clearInterval(throttleWatch);
    options.signal?.removeEventListener("abort", cancel);
    const open = connection as Connection | null;
    if (open) {
      account(open);
      open.close();
    }
  }
}
