/* Proving the credentials before anything else: STS GetCallerIdentity. */
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { requestOptions, type DrsClients } from "./clients.js";
import { translateAwsError } from "./errors.js";

export async function checkCredentials(clients: DrsClients): Promise<{ account: string; arn: string; userId: string }> {
  try {
    const out = await clients.sts.send(new GetCallerIdentityCommand({}), requestOptions(clients));
    return { account: out.Account ?? "", arn: out.Arn ?? "", userId: out.UserId ?? "" };
  } catch (error) {
    throw translateAwsError(error, "sts:GetCallerIdentity", clients.stsEndpoint);
  }
}
