/*
 * Every failure of the control plane becomes a DrsError with a stable code, a category the CLI
 * maps to an exit code, and one line saying what to do. SDK errors are translated here and only
 * here; their text is never shown raw, and no credential ever reaches a message.
 */

export type DrsErrorCategory = "input" | "credentials" | "not-found" | "unreachable" | "cancelled" | "other";

export class DrsError extends Error {
  readonly code: string;
  readonly category: DrsErrorCategory;

  constructor(code: string, category: DrsErrorCategory, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DrsError";
    this.code = code;
    this.category = category;
  }
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Turns an SDK or network error from `action` (e.g. "drs:DescribeRecoveryInstances") into a DrsError. */
export function translateAwsError(error: unknown, action: string, endpoint: string): DrsError {
  if (error instanceof DrsError) return error;
  const e = (error ?? {}) as SdkError;
  const name = e.name ?? "";
  const code = e.code ?? "";
  const where = `${action} at ${endpoint}`;
  const make = (c: string, category: DrsErrorCategory, message: string) => new DrsError(c, category, message, { cause: error });
  switch (name) {
    case "UnrecognizedClientException":
    case "InvalidClientTokenId":
      return make("UNKNOWN_ACCESS_KEY", "credentials", `the access key id is not known to AWS (${where}): check --aws-access-key-id and the region`);
    case "InvalidSignatureException":
    case "SignatureDoesNotMatch":
    case "IncompleteSignature":
      return make("BAD_SIGNATURE", "credentials", `AWS refused the request signature (${where}): the secret access key does not match the access key id`);
    case "ExpiredToken":
    case "ExpiredTokenException":
    case "RequestExpired":
      return make("EXPIRED_TOKEN", "credentials", `the session token has expired (${where}): get fresh temporary credentials`);
    case "AccessDeniedException":
    case "AccessDenied":
      return make("ACCESS_DENIED", "credentials", `access denied for ${action}: give these credentials the ${action} permission (e.g. the AWSElasticDisasterRecoveryFailbackInstallationPolicy)`);
    case "ThrottlingException":
    case "Throttling":
    case "TooManyRequestsException":
      return make("THROTTLED", "other", `AWS kept throttling ${where} past the retries: wait a minute and run again`);
    case "ResourceNotFoundException":
      return make("RECOVERY_INSTANCE_NOT_FOUND", "not-found", `${action}: the Recovery Instance was not found in this account and region`);
    case "AbortError":
      // The person stopped the client (Ctrl-C, SIGTERM) while the request was under way.
      return make("CANCELLED", "cancelled", `${where} was cancelled`);
    case "CredentialsProviderError":
      return make("NO_CREDENTIALS", "credentials", "no AWS credentials: pass --aws-access-key-id and --aws-secret-access-key, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    default:
      break;
  }
  if (e.$metadata?.httpStatusCode === 407) {
    return make("PROXY_AUTH_REQUIRED", "unreachable", `the HTTPS proxy asks for credentials on the way to ${endpoint} (HTTP 407): give them in the proxy URL, http://USER:PASSWORD@HOST:PORT`);
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || /getaddrinfo/.test(e.message ?? "")) {
    return make("ENDPOINT_NOT_RESOLVING", "unreachable", `the endpoint ${endpoint} does not resolve: check --endpoint and the DNS settings`);
  }
  if (name === "TimeoutError") {
    return make("ENDPOINT_UNREACHABLE", "unreachable", `${endpoint} did not answer ${action} in time: check the network, the proxy and --endpoint`);
  }
  if (["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "TimeoutError"].includes(code)) {
    return make("ENDPOINT_UNREACHABLE", "unreachable", `cannot reach ${endpoint} (${code || name}): check the network, the proxy and --endpoint`);
  }
  return make("DRS_ERROR", "other", `${where} failed: ${name || code || "unknown error"}`);
}
