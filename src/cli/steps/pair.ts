/*
 * Step 10: pairing. The client keeps a key pair in its state folder and publishes only its
 * certificate's fingerprint as a tag on the Recovery Instance; the agent does the same. Each pins
 * the other's fingerprint, so the agent serves only this client and the client trusts only that
 * agent. No secret ever goes into a tag. With --pairing-code, the control plane is skipped.
 */
import { join } from "node:path";
import { publishFingerprint, readFingerprint } from "../../drs/pairing.js";
import { loadOrCreateIdentity } from "../../replication/index.js";
import { CliError, EXIT } from "../exit-codes.js";
import type { Log } from "../log.js";
import type { Connection } from "./connect.js";
import { setTimeout as delay } from "node:timers/promises";

export type Identity = Awaited<ReturnType<typeof loadOrCreateIdentity>>;

export interface Pairing {
  identity: Identity;
  agentFingerprint?: string;
  pairingCode?: string;
}

/** Waits `ms`, or less when `signal` aborts (an abort ends the wait, it is not an error here). */
const sleep = (ms: number, signal?: AbortSignal): Promise<void> => delay(ms, undefined, { signal }).catch(() => undefined);

export async function pair(
  connection: Connection | null,
  instanceId: string,
  options: { stateDir: string; pairingCode?: string; pollSeconds: number; waitSeconds: number; hostname: string },
  log: Log,
  say: (line: string) => void,
  signal?: AbortSignal,
): Promise<Pairing> {
  const identity = await loadOrCreateIdentity(join(options.stateDir, "identity"), `failback-client ${options.hostname}`);
  log.info(`client certificate fingerprint ${identity.fingerprint}`);
  if (options.pairingCode !== undefined) {
    log.info("manual pairing with a pairing code");
    return { identity, pairingCode: options.pairingCode };
  }
  if (!connection) throw new CliError("PAIRING_NEEDS_DRS", EXIT.badInput, "pairing without DRS needs --pairing-code");

  await publishFingerprint(connection.clients, instanceId, "client", identity.fingerprint);
  log.info(`published the client fingerprint on ${instanceId}`);
  const deadline = Date.now() + options.waitSeconds * 1000;
  let told = false;
  for (;;) {
    const agentFingerprint = await readFingerprint(connection.clients, instanceId, "agent");
    if (agentFingerprint) {
      log.info(`agent fingerprint read from ${instanceId}: ${agentFingerprint}`);
      return { identity, agentFingerprint };
    }
    if (signal?.aborted) throw new CliError("CANCELLED", EXIT.cancelled, "cancelled while waiting for the agent to publish its fingerprint");
    if (Date.now() >= deadline) break;
    if (!told) {
      say(`Waiting for the agent on ${instanceId} to publish its fingerprint (is failback-agent running there?)...`);
      told = true;
    }
    await sleep(options.pollSeconds * 1000, signal);
  }
  throw new CliError(
    "AGENT_NOT_PAIRED",
    EXIT.agent,
    `the agent on ${instanceId} has not published its certificate fingerprint within ${options.waitSeconds} s: start failback-agent on the Recovery Instance (with --recovery-instance-id ${instanceId}) and run again`,
  );
}
