/*
 * Steps 11-13: replicate, then finish. With --once the first verified pass ends the run. Otherwise
 * replication goes on (continuous) while DRS is watched for the failback launch; the launch turns
 * into the engine's finish signal: final sync, verification, flush, and only then success.
 */
import { waitForFailbackLaunch } from "../../drs/failback-state.js";
import { replicate } from "../../replication/index.js";
import { createProgress } from "../progress.js";
import type { FlowContext } from "../failback.js";
import { formatBytes } from "../format.js";
import type { Connection } from "./connect.js";
import type { Pairing } from "./pair.js";
import type { Plan } from "./plan.js";

export async function replicateUntilDone(
  connection: Connection | null,
  plan: Plan,
  pairing: Pairing,
  options: { once: boolean; stateDir: string; pollSeconds: number },
  ctx: FlowContext,
): Promise<string> {
  const volumes = plan.mappings.flatMap(({ recoveryDisk, localDisk }) =>
    localDisk ? [{ recoveryDevice: recoveryDisk.deviceName, localPath: localDisk.name, localBytes: localDisk.bytes, recoveryBytes: recoveryDisk.bytes }] : [],
  );
  const progress = createProgress(ctx.out, ctx.log, volumes.map((v) => v.recoveryDevice));
  const finish = new AbortController();
  const stopWatching = new AbortController();

  if (!options.once && connection) {
    waitForFailbackLaunch(connection.clients, plan.instance.id, {
      intervalMs: options.pollSeconds * 1000,
      signal: AbortSignal.any([stopWatching.signal, ctx.signal]),
      onState: (state: string) => {
        ctx.log.info(`failback state of ${plan.instance.id}: ${state}`);
        ctx.out.event("failback-state", { state });
      },
    }).then(
      () => {
        ctx.out.say("Failback launched: final sync, verification and flush...");
        ctx.log.info("failback launched; finishing");
        finish.abort();
      },
      (error: unknown) => {
        if (!stopWatching.signal.aborted && !ctx.signal.aborted) ctx.log.warn(`watching the failback state: ${String(error)}`);
      },
    );
  }

  try {
    const summary = await replicate({
      host: plan.agent.host,
      port: plan.agent.port,
      identity: pairing.identity,
      agentFingerprint: pairing.agentFingerprint,
      pairingCode: pairing.pairingCode,
      volumes,
      throttleMbps: plan.throttleMbps,
      mode: options.once ? "once" : "continuous",
      finishSignal: finish.signal,
      signal: ctx.signal,
      onEvent: (event) => progress.onEvent(event),
    });
    progress.stop();
    return `${volumes.length} volume(s), ${formatBytes(summary.totalBytes)}; ${formatBytes(summary.sentBytes)} sent, ${formatBytes(summary.skippedEqualBytes)} already equal, ${formatBytes(summary.skippedZeroBytes)} zero; verified`;
  } finally {
    progress.stop();
    stopWatching.abort();
  }
}
