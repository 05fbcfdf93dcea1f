/*
 * Watching the Recovery Instance's failback state until the failback is launched (the console's
 * "Launch failback", or StartFailbackLaunch). DRS moves a launched failback to
 * FAILBACK_LAUNCH_STATE_NOT_AVAILABLE while the launch runs and to FAILBACK_COMPLETED after;
 * either means the client must make its final sync now.
 *
 * A watch that cannot read the state must not go on quietly: the client would replicate for ever
 * and never make its final sync. So each distinct failure is reported once, a refused credential
 * (expired, revoked, missing a permission) ends the watch at once, since asking again cannot help,
 * and any other failure ends it once no poll has succeeded for `giveUpAfterMs` (a poll that hangs
 * fails at the clients' request timeout, which counts from the last success too).
 */
import { setTimeout as delay } from "node:timers/promises";
import { DescribeRecoveryInstancesCommand } from "@aws-sdk/client-drs";
import { requestOptions, type DrsClients } from "./clients.js";
import { DrsError, translateAwsError } from "./errors.js";

export const LAUNCHED_STATES = new Set(["FAILBACK_LAUNCH_STATE_NOT_AVAILABLE", "FAILBACK_COMPLETED"]);

/** How long polls may keep failing (other than by a refused credential) before the watch gives up. */
export const GIVE_UP_AFTER_MS = 5 * 60_000;

/** The instance's failback state (undefined while DRS shows none); RECOVERY_INSTANCE_NOT_FOUND once the instance is gone. */
export async function readFailbackState(clients: DrsClients, id: string, signal?: AbortSignal): Promise<string | undefined> {
  let items;
  try {
    items = (await clients.drs.send(new DescribeRecoveryInstancesCommand({ filters: { recoveryInstanceIDs: [id] } }), requestOptions(clients, signal))).items;
  } catch (error) {
    throw translateAwsError(error, "drs:DescribeRecoveryInstances", clients.drsEndpoint);
  }
  const item = items?.find((i) => i.recoveryInstanceID === id);
  if (!item) throw new DrsError("RECOVERY_INSTANCE_NOT_FOUND", "not-found", `Recovery Instance ${id} is no longer listed by DRS: was it terminated?`);
  return item.failback?.state;
}

export interface WatchOptions {
  intervalMs: number;
  signal?: AbortSignal;
  onState?: (state: string) => void;
  /** A poll failed otherwise than the one before it (a success in between counts as a change). */
  onFailure?: (error: DrsError) => void;
  giveUpAfterMs?: number;
  now?: () => number;
}

/**
 * Resolves with the state once the failback is launched. Rejects when `signal` aborts, with the
 * DrsError of a refused credential, or, once polls have failed for `giveUpAfterMs`, with a
 * DrsError of the last failure's code and category saying how long.
 */
export async function waitForFailbackLaunch(clients: DrsClients, id: string, options: WatchOptions): Promise<string> {
  const now = options.now ?? Date.now;
  const giveUpAfterMs = options.giveUpAfterMs ?? GIVE_UP_AFTER_MS;
  let last: string | undefined;
  let failed: string | undefined;
  let succeeded = now();
  for (;;) {
    options.signal?.throwIfAborted();
    let state: string | undefined;
    try {
      state = await readFailbackState(clients, id, options.signal);
      failed = undefined;
      succeeded = now();
    } catch (caught) {
      options.signal?.throwIfAborted();
      const error = translateAwsError(caught, "drs:DescribeRecoveryInstances", clients.drsEndpoint);
      if (error.code !== failed) options.onFailure?.(error);
      if (error.category === "credentials") throw error;
      failed = error.code;
      const failingMs = now() - succeeded;
      if (failingMs >= giveUpAfterMs) {
        const seconds = Math.round(failingMs / 1000);
        throw new DrsError(error.code, error.category, `the failback state of ${id} could not be read for ${seconds} s: ${error.message}`, { cause: error });
      }
    }
    if (state && state !== last) {
      last = state;
      options.onState?.(state);
    }
    if (state && LAUNCHED_STATES.has(state)) return state;
    // Rejects with the abort reason when the signal aborts; registers no listener that outlives the wait.
    await delay(options.intervalMs, undefined, { signal: options.signal });
  }
}
