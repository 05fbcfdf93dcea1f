/*
 * Step 6: which Recovery Instance to fail back. The flag wins; else the instance whose source
 * server is this very machine; else the person picks, by number or full id, from the instances
 * whose volumes fit this server's disks (the DRS client lists only those). Under --no-prompt an
 * open choice fails with the candidates named, so the automation can add --recovery-instance-id.
 */
import { fittingInstances, findOwnInstance } from "../../drs/matching.js";
import { listRecoveryInstances, type RecoveryInstanceView } from "../../drs/instances.js";
import type { MachineIdentity } from "../../devices/index.js";
import { fitsVolume } from "../../mapping/index.js";
import type { LocalDisk } from "../../mapping/types.js";
import { CliError, EXIT } from "../exit-codes.js";
import { formatBytes } from "../format.js";
import type { Log } from "../log.js";
import type { Prompter } from "../prompts.js";
import type { Connection } from "./connect.js";

function describe(instance: RecoveryInstanceView): string {
  const disks = instance.disks.map((d) => `${d.deviceName} ${formatBytes(d.bytes)}`).join(", ");
  return `${instance.id}  ${instance.hostname || "(no hostname)"}  [${disks}]  ${instance.failbackState ?? "no failback state"}`;
}

function candidateList(instances: RecoveryInstanceView[]): string {
  const shown = instances.slice(0, 10).map((i) => `${i.id} (${i.hostname || "no hostname"})`);
  return shown.join(", ") + (instances.length > shown.length ? `, and ${instances.length - shown.length} more` : "");
}

export async function chooseInstance(
  connection: Connection,
  recoveryInstanceId: string | undefined,
  identity: MachineIdentity,
  localDisks: LocalDisk[],
  prompter: Prompter | null,
  log: Log,
  say: (line: string) => void,
): Promise<RecoveryInstanceView> {
  const instances = await listRecoveryInstances(connection.clients);
  log.info(`${instances.length} Recovery Instance(s) in ${connection.region}`);

  if (recoveryInstanceId) {
    const found = instances.find((i) => i.id === recoveryInstanceId);
    if (!found) {
      throw new CliError(
        "RECOVERY_INSTANCE_NOT_FOUND",
        EXIT.noInstance,
        `Recovery Instance ${recoveryInstanceId} was not found in ${connection.region} (account ${connection.account}): check --recovery-instance-id and --region`,
      );
    }
    return found;
  }

  const own = findOwnInstance(instances, identity);
  if (own.chosen) {
    log.info(`this server is the source of ${own.chosen.id}: ${own.reason}`);
    say(`Recovery Instance ${own.chosen.id} (${own.chosen.hostname}) was replicated from this server (${own.reason}).`);
    return own.chosen;
  }

  const fitting = fittingInstances(instances, localDisks, fitsVolume);
  if (fitting.length === 0) {
    const locals = localDisks.map((d) => `${d.name} ${formatBytes(d.bytes)}`).join(", ") || "none";
    throw new CliError(
      "NO_FITTING_INSTANCE",
      EXIT.noInstance,
      `none of the ${instances.length} Recovery Instance(s) in ${connection.region} fits this server's disks (${locals}): each recovery volume needs a local disk at least as large`,
    );
  }
  if (!prompter) {
    const candidates = own.candidates.length > 0 ? own.candidates : fitting;
    throw new CliError(
      "AMBIGUOUS_INSTANCE",
      EXIT.badInput,
      `${candidates.length} Recovery Instances could be failed back here; pass --recovery-instance-id with one of: ${candidateList(candidates)}`,
    );
  }

  say("Recovery Instances whose volumes fit this server:");
  fitting.forEach((instance, index) => say(`  ${String(index + 1).padStart(3)}. ${describe(instance)}`));
  const answer = await prompter.text(`Choose a Recovery Instance (1-${fitting.length}, or its full id):`, {
    validate: (value) => {
      if (/^\d+$/.test(value)) {
        const n = Number(value);
        return n >= 1 && n <= fitting.length ? true : `Choose a number from 1 to ${fitting.length}.`;
      }
      if (fitting.some((i) => i.id === value)) return true;
      if (instances.some((i) => i.id === value)) return `${value} does not fit this server's disks; choose one of the listed instances.`;
      return `"${value}" is neither a number from the list nor the id of a listed instance (i-...).`;
    },
  });
  const chosen = /^\d+$/.test(answer) ? fitting[Number(answer) - 1] : fitting.find((i) => i.id === answer);
  if (!chosen) throw new CliError("INSTANCE_CHOICE", EXIT.other, `no instance for answer "${answer}"`);
  return chosen;
}
