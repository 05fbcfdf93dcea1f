/*
 * The DRS and STS clients, made once from the settings. Explicit keys win; without them the SDK's
 * default provider chain (environment, profile, instance role) is used. A custom DRS endpoint may
 * be a bare host name, as the DRS docs show VPC endpoints. STS follows AWS_ENDPOINT_URL_STS (and
 * DRS AWS_ENDPOINT_URL_DRS, both AWS_ENDPOINT_URL). The SDK reads these too when no endpoint is
 * set, but they are read here so the endpoint is decided in one place and named in messages.
 */
import { DrsClient } from "@aws-sdk/client-drs";
import { STSClient } from "@aws-sdk/client-sts";
import { DrsError } from "./errors.js";
import { proxyFromEnv, proxyOptions, type Timeouts } from "./proxy.js";

export interface ClientOptions {
  region: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  env?: NodeJS.ProcessEnv;
  /** Ends every request under way, and refuses new ones, once it aborts (the person's Ctrl-C). */
  signal?: AbortSignal;
  timeouts?: Timeouts;
}

/**
 * The SDK waits for an answer for ever by default: behind a firewall that drops packets, or a
 * proxy that hangs, one request would stop the client for good (a launch watch that never sees
 * the launch). A connection gets 10 s, and an open request 30 s of silence, before it fails and
 * is retried (maxAttempts).
 */
export const TIMEOUTS: Timeouts = { connectMs: 10_000, requestMs: 30_000 };

export interface DrsClients {
  drs: DrsClient;
  sts: STSClient;
  region: string;
  /** Where DRS and STS requests go, and through which proxy, for messages (never a credential). */
  drsEndpoint: string;
  stsEndpoint: string;
  signal?: AbortSignal;
}

/** The options of one request: aborted with the clients' signal, or with `signal`. */
export function requestOptions(clients: DrsClients, signal?: AbortSignal): { abortSignal?: AbortSignal } {
  const signals = [clients.signal, signal].filter((s) => s !== undefined);
  // One signal per request: the SDK's handler sets `onabort` on it, which on a shared signal
  // would take over from the request before it, leaving that one to run on.
  return signals.length > 0 ? { abortSignal: AbortSignal.any(signals) } : {};
}

const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/;

export function isRegion(region: string): boolean {
  return REGION.test(region);
}

/** A URL from an endpoint given with or without its scheme; DrsError INVALID_ENDPOINT otherwise. */
export function normalizeEndpoint(endpoint: string): string {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `https://${endpoint}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new DrsError("INVALID_ENDPOINT", "input", `--endpoint "${endpoint}" is not a host name or URL (e.g. vpce-0abc.drs.us-east-1.vpce.amazonaws.com)`);
  }
  if (!["http:", "https:"].includes(url.protocol) || url.username || url.password) {
    throw new DrsError("INVALID_ENDPOINT", "input", `--endpoint "${endpoint}" must be an https:// (or http://) URL or a bare host name`);
  }
  return url.toString().replace(/\/$/, "");
}

export function createClients(options: ClientOptions): DrsClients {
  if (!isRegion(options.region)) {
    throw new DrsError("INVALID_REGION", "input", `"${options.region}" is not an AWS region name (e.g. us-east-1, eu-west-2, ap-south-1)`);
  }
  const env = options.env ?? process.env;
  const drsEndpoint = options.endpoint ? normalizeEndpoint(options.endpoint) : env.AWS_ENDPOINT_URL_DRS || env.AWS_ENDPOINT_URL || undefined;
  const stsEndpoint = env.AWS_ENDPOINT_URL_STS || env.AWS_ENDPOINT_URL || undefined;
  const common = { region: options.region, credentials: options.credentials, maxAttempts: 3 };
  const drsUrl = drsEndpoint ? normalizeEndpoint(drsEndpoint) : `https://drs.${options.region}.amazonaws.com`;
  const stsUrl = stsEndpoint ? normalizeEndpoint(stsEndpoint) : `https://sts.${options.region}.amazonaws.com`;
  const proxy = proxyFromEnv(env);
  const timeouts = options.timeouts ?? TIMEOUTS;
  const drsProxy = proxyOptions(drsUrl, proxy, env, timeouts);
  const stsProxy = proxyOptions(stsUrl, proxy, env, timeouts);
  const through = (proxied: { proxied: boolean }) => (proxy && proxied.proxied ? ` (through the proxy ${proxy.shown})` : "");
  return {
    drs: new DrsClient({ ...common, requestHandler: drsProxy.requestHandler, ...(drsEndpoint ? { endpoint: drsUrl } : {}) }),
    sts: new STSClient({ ...common, requestHandler: stsProxy.requestHandler, ...(stsEndpoint ? { endpoint: stsUrl } : {}) }),
    region: options.region,
    drsEndpoint: drsUrl + through(drsProxy),
    stsEndpoint: stsUrl + through(stsProxy),
    ...(options.signal ? { signal: options.signal } : {}),
  };
}
