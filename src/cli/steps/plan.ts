/*
 * Step 9: the plan, shown and logged before the first byte is written: the instance, each recovery
 * volume with its local disk and both sizes, what is left out, the agent's address and the throttle
 * from the failback replication configuration.
 */
import type { RecoveryInstanceView } from "../../drs/instances.js";
import { agentAddress, getFailbackReplicationConfig } from "../../drs/replication-config.js";
import { fitsVolume } from "../../mapping/index.js";
import type { ResolvedMapping } from "../../mapping/types.js";
import { formatBytes } from "../format.js";
import { parseAgentAddress, type AgentAddress } from "../settings.js";
import type { Connection } from "./connect.js";

export interface Plan {
  instance: RecoveryInstanceView;
  mappings: ResolvedMapping[];
  agent: AgentAddress;
  /** Mbps; 0 is unlimited. */
  throttleMbps: number;
}

export async function makePlan(
  connection: Connection,
  instance: RecoveryInstanceView,
  mappings: ResolvedMapping[],
  givenAgent: AgentAddress | undefined,
): Promise<Plan> {
  const config = await getFailbackReplicationConfig(connection.clients, instance.id);
  const agent = givenAgent ?? parseAgentAddress(agentAddress(instance, config));
  return { instance, mappings, agent, throttleMbps: config.bandwidthThrottlingMbps };
}

/** The plan as lines for the screen and the log. */
export function describePlan(plan: Plan): string[] {
  const lines = [`Failback plan for Recovery Instance ${plan.instance.id} (${plan.instance.hostname || "no hostname"}):`];
  for (const { recoveryDisk, localDisk } of plan.mappings) {
    if (!localDisk) {
      lines.push(`  ${recoveryDisk.deviceName} (${formatBytes(recoveryDisk.bytes)}) -> excluded, not replicated`);
      continue;
    }
    const fractional = fitsVolume(localDisk.bytes, recoveryDisk.bytes) === "fractional";
    lines.push(
      `  ${recoveryDisk.deviceName} (${formatBytes(recoveryDisk.bytes)}) -> ${localDisk.name} (${formatBytes(localDisk.bytes)})` +
        (fractional ? "  [fractional: the tail beyond the local size must be all zeros]" : ""),
    );
  }
  lines.push(`  agent: ${plan.agent.host.includes(":") ? `[${plan.agent.host}]` : plan.agent.host}:${plan.agent.port}`);
  lines.push(`  bandwidth throttle: ${plan.throttleMbps > 0 ? `${plan.throttleMbps} Mbps` : "none"}`);
  return lines;
}
