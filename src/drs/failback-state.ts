/*
 * Watching the Recovery Instance's failback state until the failback is launched (the console's
 * "Launch failback", or StartFailbackLaunch). DRS moves a launched failback to
 * FAILBACK_LAUNCH_STATE_NOT_AVAILABLE while the launch runs and to FAILBACK_COMPLETED after;
 * either means the client must make its final sync now.
 */
import { setTimeout as delay } from "node:timers/promises";
import { DescribeRecoveryInstancesCommand } from "@aws-sdk/client-drs";
import type { DrsClients } from "./clients.js";
import { translateAwsError } from "./errors.js";

export const LAUNCHED_STATES = new Set(["FAILBACK_LAUNCH_STATE_NOT_AVAILABLE", "FAILBACK_COMPLETED"]);

export async function readFailbackState(clients: DrsClients, id: string): Promise<string | undefined> {
  try {
    const out = await clients.drs.send(new DescribeRecoveryInstancesCommand({ filters: { recoveryInstanceIDs: [id] } }));
    return out.items?.find((i) => i.recoveryInstanceID === id)?.failback?.state;
  } catch (error) {
    throw translateAwsError(error, "drs:DescribeRecoveryInstances", clients.drsEndpoint);
  }
}

/** Resolves with the state once the failback is launched; rejects when `signal` aborts. */
export async function waitForFailbackLaunch(
  clients: DrsClients,
  id: string,
  options: { intervalMs: number; signal?: AbortSignal; onState?: (state: string) => void },
): Promise<string> {
  let last: string | undefined;
  for (;;) {
    options.signal?.throwIfAborted();
    const state = await readFailbackState(clients, id).catch((error: unknown) => {
      // A failed poll is retried at the next interval; the failback does not stop for it.
      options.onState?.(`unknown (${error instanceof Error ? error.message : String(error)})`);
      return last;
    });
    if (state && state !== last) {
      last = state;
      options.onState?.(state);
    }
    if (state && LAUNCHED_STATES.has(state)) return state;
    // Rejects with the abort reason when the signal aborts; registers no listener that outlives the wait.
    await delay(options.intervalMs, undefined, { signal: options.signal });
  }
}
