/*
 * Pairing through the control plane: each side publishes only the sha256 fingerprint of its own
 * certificate as a tag on the Recovery Instance, and pins the other's. A fingerprint is public by
 * nature; no key, secret or code ever goes into a tag.
 */
import { DescribeRecoveryInstancesCommand, ListTagsForResourceCommand, TagResourceCommand } from "@aws-sdk/client-drs";
import { requestOptions, type DrsClients } from "./clients.js";
import { DrsError, translateAwsError } from "./errors.js";

export const FINGERPRINT_TAGS = { agent: "failback:agent-cert-sha256", client: "failback:client-cert-sha256" } as const;
export type PairingRole = keyof typeof FINGERPRINT_TAGS;

const FINGERPRINT = /^[0-9a-f]{64}$/;

async function instanceArn(clients: DrsClients, id: string): Promise<string> {
  const out = await clients.drs.send(new DescribeRecoveryInstancesCommand({ filters: { recoveryInstanceIDs: [id] } }), requestOptions(clients));
  const arn = out.items?.find((i) => i.recoveryInstanceID === id)?.arn;
  if (!arn) throw new DrsError("RECOVERY_INSTANCE_NOT_FOUND", "not-found", `Recovery Instance ${id} was not found: check the instance id and the region`);
  return arn;
}

export async function publishFingerprint(clients: DrsClients, recoveryInstanceId: string, role: PairingRole, fingerprint: string): Promise<void> {
  if (!FINGERPRINT.test(fingerprint)) throw new DrsError("BAD_FINGERPRINT", "input", `a certificate fingerprint is 64 lowercase hex digits, not "${fingerprint}"`);
  try {
    const arn = await instanceArn(clients, recoveryInstanceId);
    await clients.drs.send(new TagResourceCommand({ resourceArn: arn, tags: { [FINGERPRINT_TAGS[role]]: fingerprint } }), requestOptions(clients));
  } catch (error) {
    throw translateAwsError(error, "drs:TagResource", clients.drsEndpoint);
  }
}

/** The fingerprint `role` published on the instance, or undefined when none (or a malformed one) is there. */
export async function readFingerprint(clients: DrsClients, recoveryInstanceId: string, role: PairingRole): Promise<string | undefined> {
  try {
    const arn = await instanceArn(clients, recoveryInstanceId);
    const out = await clients.drs.send(new ListTagsForResourceCommand({ resourceArn: arn }), requestOptions(clients));
    const value = out.tags?.[FINGERPRINT_TAGS[role]];
    return value && FINGERPRINT.test(value) ? value : undefined;
  } catch (error) {
    throw translateAwsError(error, "drs:ListTagsForResource", clients.drsEndpoint);
  }
}
