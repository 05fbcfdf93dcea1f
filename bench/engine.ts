/**
 * Runs the replication engine as the product runs it: the agent and the client are separate Node
 * processes (bench/agent-proc.ts, bench/client-proc.ts over the built dist/ modules), paired with
 * their own key pairs over TLS, optionally in two network namespaces. The agent is started once per
 * figure and left running across client runs, as a service would be; its peak memory is read from
 * /proc while it is still alive.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cpuSeconds, freePort, start, vmHwm, waitForListener, type Started } from "./proc.js";

const here = dirname(fileURLToPath(import.meta.url));

export interface AgentVolume {
  readonly deviceName: string;
  readonly path: string;
}

export interface ClientVolume {
  readonly recoveryDevice: string;
  readonly localPath: string;
  readonly localBytes: number;
  readonly recoveryBytes: number;
}

/** What the client driver prints on success. */
export interface ClientReport {
  /** Seconds inside replicate(): connect, handshake, scan, transfer, verify, flush. */
  readonly seconds: number;
  /** Seconds from the client process's spawn to its exit (adds Node start-up and module load). */
  readonly wallSeconds: number;
  /** CPU seconds (user + system, every thread) the client spent inside replicate(). */
  readonly cpuSeconds: number;
  /** Data-plane bytes received by the client, as the engine counts them. */
  readonly wireBytesIn: number;
  /** Data-plane bytes sent by the client (digests, requests, acknowledgements). */
  readonly wireBytesOut: number;
  readonly peakRssBytes: number;
  readonly summary: unknown;
  readonly events: Record<string, number>;
}

export interface RunningAgent {
  readonly host: string;
  readonly port: number;
  readonly fingerprint: string;
  /** Seconds from spawn until the agent said it was listening (includes any start-up hashing). */
  readonly startSeconds: number;
  peakRssBytes(): number | undefined;
  /** CPU seconds (user + system, every thread) the agent has used since it started. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

export interface Pairing {
  readonly agentDir: string;
  readonly clientDir: string;
}

/** Directories that hold each side's key pair; the drivers make the keys on first use. */
export function pairingDirs(workDir: string): Pairing {
  const agentDir = join(workDir, "agent-identity");
  const clientDir = join(workDir, "client-identity");
  mkdirSync(agentDir, { recursive: true });
  mkdirSync(clientDir, { recursive: true });
  return { agentDir, clientDir };
}

function lastJsonLine(text: string): Record<string, unknown> | undefined {
  const lines = text.trim().split("\n").reverse();
  for (const line of lines) {
    try {
      const v = JSON.parse(line) as unknown;
      if (typeof v === "object" && v !== null) return v as Record<string, unknown>;
    } catch {
      // Not a JSON line: the drivers print only JSON on stdout, but be tolerant of stray output.
    }
  }
  return undefined;
}

/** Reads the client identity's fingerprint by running the client driver in "fingerprint" mode. */
export async function clientFingerprint(pairing: Pairing): Promise<string> {
  const p = start(process.execPath, [join(here, "client-proc.js"), JSON.stringify({ identityDir: pairing.clientDir, fingerprintOnly: true })]);
  const { code } = await p.exited;
  const out = lastJsonLine(p.stdout());
  if (code !== 0 || typeof out?.fingerprint !== "string") throw new Error(`bench: client identity: ${p.stderr().trim().split("\n").filter((l) => /Error/.test(l))[0] ?? p.stderr().trim().slice(-300)}`);
  return out.fingerprint;
}

/** Starts the agent driver and waits until it listens. */
export async function startAgent(opts: {
  pairing: Pairing;
  clientFingerprint: string;
  volumes: readonly AgentVolume[];
  netns?: string;
  host?: string;
}): Promise<RunningAgent> {
  const host = opts.host ?? "127.0.0.1";
  const port = await freePort();
  const t0 = performance.now();
  const args = { identityDir: opts.pairing.agentDir, host, port, volumes: opts.volumes, clientFingerprint: opts.clientFingerprint };
  const p: Started = start(process.execPath, [join(here, "agent-proc.js"), JSON.stringify(args)], opts.netns === undefined ? {} : { netns: opts.netns });
  const deadline = Date.now() + 120_000;
  let ready: Record<string, unknown> | undefined;
  while (ready === undefined) {
    if (p.child.exitCode !== null) throw new Error(`bench: agent exited early: ${p.stderr().trim()}`);
    if (Date.now() > deadline) { p.child.kill("SIGKILL"); throw new Error("bench: agent not ready after 120 s"); }
    const out = lastJsonLine(p.stdout());
    if (out?.ready === true) ready = out;
    else await new Promise((r) => setTimeout(r, 20));
  }
  await waitForListener(port, opts.netns === undefined ? {} : { netns: opts.netns });
  const startSeconds = (performance.now() - t0) / 1000;
  const pid = p.child.pid ?? -1;
  let peak: number | undefined;
  return {
    host, port, startSeconds,
    fingerprint: String(ready.fingerprint),
    cpuSeconds: () => cpuSeconds(pid),
    peakRssBytes() {
      peak = Math.max(peak ?? 0, vmHwm(pid) ?? 0) || peak;
      return peak;
    },
    async stop() {
      peak = Math.max(peak ?? 0, vmHwm(pid) ?? 0) || peak;
      if (p.child.exitCode === null) p.child.kill("SIGTERM");
      const timer = setTimeout(() => p.child.kill("SIGKILL"), 10_000);
      await p.exited;
      clearTimeout(timer);
    },
  };
}

/** Runs one client pass (mode "once") against a running agent; throws with the driver's error. */
/** The Node flags the failback-client launcher (bin/failback-client) starts Node with: the bench's
 * client runs as the product does. */
function clientNodeFlags(): string[] {
  const launcher = readFileSync(join(here, "..", "bin", "failback-client"), "utf8");
  return /^exec node (.*?) "/m.exec(launcher)?.[1]?.trim().split(/\s+/).filter(Boolean) ?? [];
}

export async function runClient(opts: {
  pairing: Pairing;
  agent: RunningAgent;
  volumes: readonly ClientVolume[];
  throttleMbps?: number;
  netns?: string;
  timeoutMs?: number;
}): Promise<ClientReport> {
  const args = {
    identityDir: opts.pairing.clientDir,
    host: opts.agent.host,
    port: opts.agent.port,
    agentFingerprint: opts.agent.fingerprint,
    volumes: opts.volumes,
    throttleMbps: opts.throttleMbps ?? 0,
  };
  const t0 = performance.now();
  const p = start(process.execPath, [...clientNodeFlags(), join(here, "client-proc.js"), JSON.stringify(args)], opts.netns === undefined ? {} : { netns: opts.netns });
  const timer = setTimeout(() => p.child.kill("SIGKILL"), opts.timeoutMs ?? 900_000);
  const { code, signal } = await p.exited;
  clearTimeout(timer);
  const wallSeconds = (performance.now() - t0) / 1000;
  const out = lastJsonLine(p.stdout());
  if (code !== 0 || out === undefined || out.ok !== true) {
    throw new Error(`bench: client failed (${code ?? signal}): ${String(out?.error ?? p.stderr().trim().split("\n").slice(-5).join(" | "))}`);
  }
  return {
    seconds: Number(out.seconds),
    wallSeconds,
    cpuSeconds: Number(out.cpuSeconds),
    wireBytesIn: Number(out.wireBytesIn),
    wireBytesOut: Number(out.wireBytesOut),
    peakRssBytes: Number(out.peakRssBytes),
    summary: out.summary,
    events: (out.events ?? {}) as Record<string, number>,
  };
}
