/**
 * The bench's client process: one pass of the engine's replicate() (mode "once") against the bench
 * agent, pinned to its fingerprint. Prints one JSON line: {"ok":true, seconds, wire bytes, peak RSS,
 * summary, event counts}, or {"ok":false,"error":...}. With {"fingerprintOnly":true} it only makes
 * (or loads) its identity and prints the fingerprint, for the agent's allow-list.
 */
import { loadEngine } from "./engine-api.js";

interface Args {
  identityDir: string;
  fingerprintOnly?: boolean;
  host: string;
  port: number;
  agentFingerprint: string;
  volumes: { recoveryDevice: string; localPath: string; localBytes: number; recoveryBytes: number }[];
  throttleMbps: number;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? "{}") as Args;
  const engine = await loadEngine();
  const identity = await engine.loadOrCreateIdentity(args.identityDir, "failback-bench-client");
  if (args.fingerprintOnly === true) {
    process.stdout.write(`${JSON.stringify({ fingerprint: identity.fingerprint })}\n`);
    return;
  }
  const events: Record<string, number> = {};
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const summary = await engine.replicate({
    host: args.host,
    port: args.port,
    identity,
    agentFingerprint: args.agentFingerprint,
    volumes: args.volumes,
    throttleMbps: args.throttleMbps,
    mode: "once",
    onEvent: (event: { type: string }) => { events[event.type] = (events[event.type] ?? 0) + 1; },
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({
    ok: true,
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    wireBytesIn: summary.wireBytesIn,
    wireBytesOut: summary.wireBytesOut,
    // resourceUsage().maxRSS is in KiB (getrusage ru_maxrss).
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    summary,
    events,
  })}\n`);
}

main().catch((e: unknown) => {
  const code = typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : "";
  process.stdout.write(`${JSON.stringify({ ok: false, error: `${code} ${e instanceof Error ? e.message : String(e)}`.trim() })}\n`);
  process.exit(1);
});
