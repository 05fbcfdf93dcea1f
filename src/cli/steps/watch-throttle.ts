/*
 * The failback replication configuration's bandwidth limit may be changed in the DRS console while
 * replication runs, for days: it is read again at each launch poll, and the engine sends a change to
 * the agent. A failed read keeps the last limit and is logged once per distinct failure: a limit is
 * not worth stopping a failback for, and the launch watch ends the run when DRS stays unreachable.
 */
import { setTimeout as delay } from "node:timers/promises";
import { getFailbackReplicationConfig } from "../../drs/replication-config.js";
import type { FlowContext } from "../failback.js";
import type { Connection } from "./connect.js";

export interface ThrottleWatch {
  /** The latest limit in Mbps (0 = none). */
  current(): number;
  end(): void;
}

export function watchThrottle(connection: Connection, id: string, initialMbps: number, pollSeconds: number, ctx: FlowContext): ThrottleWatch {
  let mbps = initialMbps;
  let lastFailure = "";
  const ended = new AbortController();
  const signal = AbortSignal.any([ended.signal, ctx.signal]);
  void (async () => {
    while (!signal.aborted) {
      await delay(pollSeconds * 1000, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) return;
      try {
        const next = (await getFailbackReplicationConfig(connection.clients, id)).bandwidthThrottlingMbps;
        lastFailure = "";
        if (next !== mbps) ctx.log.info(`bandwidth limit of ${id} changed in DRS: ${next > 0 ? `${next} Mbps` : "none"} (was ${mbps > 0 ? `${mbps} Mbps` : "none"})`);
        mbps = next;
      } catch (error) {
        const line = `cannot read the bandwidth limit of ${id}; keeping ${mbps > 0 ? `${mbps} Mbps` : "none"}: ${error instanceof Error ? error.message : String(error)}`;
        if (line !== lastFailure) ctx.log.warn(line);
        lastFailure = line;
      }
    }
  })();
  return { current: () => mbps, end: () => ended.abort() };
}
