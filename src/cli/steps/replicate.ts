/*
 * Steps 11-13: replicate, then finish. With --once the first verified pass ends the run. Otherwise
 * replication goes on (continuous) while DRS is watched for the failback launch (watch-launch.ts);
 * the launch turns into the engine's finish signal: final sync, verification, flush, and only then
 * success. A watch that fails for good stops the engine and ends the run with its own line.
 */
import { replicate, type ReplicationSummary } from "../../replication/index.js";
import { createProgress } from "../progress.js";
import type { FlowContext } from "../failback.js";
import { formatBytes } from "../format.js";
import type { Connection } from "./connect.js";
import type { Pairing } from "./pair.js";
import type { Plan } from "./plan.js";
import { watchLaunch } from "./watch-launch.js";
import { watchThrottle } from "./watch-throttle.js";

/** The run's last line (and the `done` event's `summary`): repairs are named, never hidden. */
export function describeSummary(volumes: number, summary: ReplicationSummary): string {
  const repaired = summary.mismatchesRepaired > 0 ? `, ${summary.mismatchesRepaired} mismatching block(s) repaired` : "";
  return `${volumes} volume(s), ${formatBytes(summary.totalBytes)}; ${formatBytes(summary.sentBytes)} sent, ${formatBytes(summary.skippedEqualBytes)} already equal, ${formatBytes(summary.skippedZeroBytes)} zero; verified${repaired}`;
}

export async function replicateUntilDone(
  connection: Connection | null,
  plan: Plan,
  pairing: Pairing,
  options: { once: boolean; pollSeconds: number },
  ctx: FlowContext,
): Promise<string> {
  const volumes = plan.mappings.flatMap(({ recoveryDisk, localDisk }) =>
    localDisk ? [{ recoveryDevice: recoveryDisk.deviceName, localPath: localDisk.name, localBytes: localDisk.bytes, recoveryBytes: recoveryDisk.bytes }] : [],
  );
  const progress = createProgress(ctx.out, ctx.log, volumes.map((v) => v.recoveryDevice));
  const watch = !options.once && connection ? watchLaunch(connection, plan.instance.id, options.pollSeconds, ctx) : undefined;
  // The console's bandwidth limit may change during a long replication (--once is one pass).
  const throttle = !options.once && connection ? watchThrottle(connection, plan.instance.id, plan.throttleMbps, options.pollSeconds, ctx) : undefined;

  try {
    const summary = await replicate({
      host: plan.agent.host,
      port: plan.agent.port,
      identity: pairing.identity,
      agentFingerprint: pairing.agentFingerprint,
      pairingCode: pairing.pairingCode,
      volumes,
      throttleMbps: throttle ? () => throttle.current() : plan.throttleMbps,
      mode: options.once ? "once" : "continuous",
      finishSignal: watch?.finish,
      signal: watch ? AbortSignal.any([ctx.signal, watch.stop]) : ctx.signal,
      onEvent: (event) => progress.onEvent(event),
    });
    progress.stop();
    return describeSummary(volumes.length, summary);
  } catch (error) {
    // The engine saw only a cancel; the watch knows why.
    if (watch?.failure && !ctx.signal.aborted) throw watch.failure;
    throw error;
  } finally {
    progress.stop();
    watch?.end();
    throttle?.end();
  }
}
