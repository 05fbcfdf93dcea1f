/*
 * Steps 2-4 of the flow: credentials, region and endpoint (from flags, the AWS environment, or the
 * person, in the DRS Failback Client's order), then a check with STS that they work before
 * anything else is asked.
 */
import { createClients, type DrsClients } from "../../drs/clients.js";
import { checkCredentials } from "../../drs/credentials.js";
import { CliError, EXIT } from "../exit-codes.js";
import type { Log } from "../log.js";
import type { Prompter } from "../prompts.js";
import type { Settings } from "../settings.js";

export interface Connection {
  clients: DrsClients;
  region: string;
  account: string;
  arn: string;
  /** Where the credentials came from, so a message can say which to renew. */
  credentialSource: CredentialSource;
}

/** Flags, typed at the prompt, or the SDK's chain (AWS_* variables, a profile, an instance role). */
export type CredentialSource = "flags" | "prompt" | "environment";

const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/;

export function regionProblem(region: string): true | string {
  return REGION.test(region) ? true : `"${region}" is not an AWS region name (e.g. us-east-1, eu-west-2, ap-south-1).`;
}

function hasEnvironmentCredentials(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.AWS_ACCESS_KEY_ID || env.AWS_PROFILE || env.AWS_WEB_IDENTITY_TOKEN_FILE || env.AWS_CONTAINER_CREDENTIALS_FULL_URI);
}

interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

async function askCredentials(prompter: Prompter): Promise<Credentials> {
  const accessKeyId = await prompter.text("AWS access key id:", {
    validate: (v) => (/^[A-Z0-9]{16,128}$/.test(v) ? true : "An access key id is 16 or more capital letters and digits (AKIA... or ASIA...)."),
  });
  const secretAccessKey = await prompter.secret("AWS secret access key:");
  const sessionToken = await prompter.secret("AWS session token (Enter if none):", { allowEmpty: true });
  return { accessKeyId, secretAccessKey, sessionToken: sessionToken || undefined };
}

/** Resolves credentials, region and endpoint, and proves them with STS GetCallerIdentity. */
export async function connect(settings: Readonly<Settings>, prompter: Prompter | null, log: Log, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<Connection> {
  let credentials: Credentials | undefined;
  let credentialSource: CredentialSource = "environment";
  if (settings.accessKeyId && settings.secretAccessKey) {
    credentials = { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey, sessionToken: settings.sessionToken };
    credentialSource = "flags";
  } else if (prompter && !hasEnvironmentCredentials(env)) {
    credentials = await askCredentials(prompter);
    credentialSource = "prompt";
  }
  // Without explicit keys the SDK's provider chain (environment, profile, instance role) is used.
  log.addSecret(credentials?.secretAccessKey);
  log.addSecret(credentials?.sessionToken);

  let region = settings.region;
  if (region === undefined) {
    if (!prompter) throw new CliError("MISSING_REGION", EXIT.badInput, "no region: pass --region (e.g. --region us-east-1) or set AWS_REGION");
    region = await prompter.text("AWS region (e.g. us-east-1):", { validate: regionProblem });
  }
  const regionCheck = regionProblem(region);
  if (regionCheck !== true) throw new CliError("BAD_REGION", EXIT.badInput, `--region ${regionCheck}`);

  let endpoint = settings.endpoint;
  if (endpoint === undefined && !settings.defaultEndpoint && prompter && !env.AWS_ENDPOINT_URL_DRS && !env.AWS_ENDPOINT_URL) {
    const answer = await prompter.text("Custom DRS endpoint (e.g. a VPC endpoint), or Enter for the default:", {
      validate: (v) => (v === "" || !/\s/.test(v) ? true : "An endpoint is a host name or URL without spaces."),
    });
    endpoint = answer || undefined;
  }

  // Every later DRS request of the run ends with the run's own stop signal (Ctrl-C, SIGTERM).
  const clients = createClients({ region, endpoint, credentials, signal });
  const caller = await checkCredentials(clients);
  log.info(`credentials accepted: account ${caller.account}, ${caller.arn}; region ${region}; DRS endpoint ${endpoint ?? "default"}`);
  return { clients, region, account: caller.account, arn: caller.arn, credentialSource };
}
