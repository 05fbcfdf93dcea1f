/**
 * The bench's agent process: serves the given files as volumes with the engine's startAgent, and
 * accepts only the bench client's certificate fingerprint. Prints one JSON line {"ready":true,...}
 * once it listens; stops cleanly on SIGTERM. Arguments: one JSON object (see engine.ts).
 */
import { loadEngine } from "./engine-api.js";

interface Args {
  identityDir: string;
  host: string;
  port: number;
  volumes: { deviceName: string; path: string }[];
  clientFingerprint: string;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? "{}") as Args;
  const engine = await loadEngine();
  const identity = await engine.loadOrCreateIdentity(args.identityDir, "failback-bench-agent");
  const agent = await engine.startAgent({
    host: args.host,
    port: args.port,
    volumes: args.volumes,
    identity,
    authorize: (fingerprint: string) => fingerprint === args.clientFingerprint,
  });
  process.stdout.write(`${JSON.stringify({ ready: true, fingerprint: identity.fingerprint, port: args.port })}\n`);
  process.once("SIGTERM", () => {
    void agent.close().finally(() => process.exit(0));
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`agent-proc: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
