/* The failback replication configuration: the bandwidth throttle and which of the agent's addresses to use. */
import { GetFailbackReplicationConfigurationCommand } from "@aws-sdk/client-drs";
import { requestOptions, type DrsClients } from "./clients.js";
import { DrsError, translateAwsError } from "./errors.js";
import type { RecoveryInstanceView } from "./instances.js";

export interface FailbackReplicationConfig {
  /** Mbps; 0 is unlimited. */
  bandwidthThrottlingMbps: number;
  usePrivateIP: boolean;
  name?: string;
}

export async function getFailbackReplicationConfig(clients: DrsClients, recoveryInstanceId: string): Promise<FailbackReplicationConfig> {
  try {
    const out = await clients.drs.send(new GetFailbackReplicationConfigurationCommand({ recoveryInstanceID: recoveryInstanceId }), requestOptions(clients));
    return { bandwidthThrottlingMbps: out.bandwidthThrottling ?? 0, usePrivateIP: out.usePrivateIP ?? false, name: out.name };
  } catch (error) {
    throw translateAwsError(error, "drs:GetFailbackReplicationConfiguration", clients.drsEndpoint);
  }
}

/** "host:port" of the agent on the instance, by the configuration's choice of private or public IP. */
export function agentAddress(instance: RecoveryInstanceView, config: FailbackReplicationConfig, port = 1500): string {
  const ip = config.usePrivateIP ? instance.privateIp : instance.publicIp;
  if (!ip) {
    throw new DrsError(
      "NO_AGENT_ADDRESS",
      "not-found",
      `Recovery Instance ${instance.id} has no ${config.usePrivateIP ? "private" : "public"} IP address: change the failback replication configuration's private/public IP setting, or pass --agent-address`,
    );
  }
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}
