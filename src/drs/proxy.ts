/*
 * The HTTPS proxy that DRS and STS requests go through: HTTPS_PROXY (or https_proxy), except for
 * the hosts NO_PROXY names. Only the control plane uses it; the agent's data connection on TCP 1500
 * is direct. The proxy URL may carry a user and password, so it is only ever shown without them.
 */
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { HttpsProxyAgent } from "https-proxy-agent";
import { DrsError } from "./errors.js";

export interface Proxy {
  url: URL;
  /** The proxy as messages show it: scheme, host and port, no credentials. */
  shown: string;
}

export function proxyFromEnv(env: NodeJS.ProcessEnv): Proxy | undefined {
  const text = env.HTTPS_PROXY || env.https_proxy;
  if (!text) return undefined;
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    url = new URL("invalid:");
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || !url.hostname) {
    // Everything up to the last "@" may be a user and password, parsed or not.
    const shown = text.replace(/^([a-z][a-z0-9+.-]*:\/\/)?.*@/i, "$1");
    throw new DrsError("INVALID_PROXY", "input", `HTTPS_PROXY "${shown}" is not a proxy URL (e.g. http://proxy.example.com:3128)`);
  }
  return { url, shown: `${url.protocol}//${url.host}` };
}

/** Whether NO_PROXY exempts the endpoint's host: "*", a host name, or a domain suffix. */
export function bypassesProxy(endpoint: string, env: NodeJS.ProcessEnv): boolean {
  const host = new URL(endpoint).hostname.toLowerCase();
  const entries = (env.NO_PROXY || env.no_proxy || "").split(/[\s,]+/).filter(Boolean);
  return entries.some((entry) => {
    const name = entry.toLowerCase().replace(/:\d+$/, "").replace(/^\*?\./, "");
    return entry === "*" || host === name || host.endsWith(`.${name}`);
  });
}

export interface Timeouts {
  /** To open a connection (through the proxy: to the proxy). */
  connectMs: number;
  /** Of silence on an open request before it fails. */
  requestMs: number;
}

/** The request handler for the endpoint: through the proxy (`proxied`), or direct. */
export function proxyOptions(endpoint: string, proxy: Proxy | undefined, env: NodeJS.ProcessEnv, timeouts: Timeouts): { requestHandler: NodeHttpHandler; proxied: boolean } {
  const limits = { connectionTimeout: timeouts.connectMs, requestTimeout: timeouts.requestMs };
  if (!proxy || bypassesProxy(endpoint, env)) return { requestHandler: new NodeHttpHandler(limits), proxied: false };
  // A CONNECT tunnel serves plain-HTTP endpoints (a test emulator) as well as HTTPS ones.
  const agent = new HttpsProxyAgent(proxy.url, { keepAlive: true });
  return { requestHandler: new NodeHttpHandler({ ...limits, httpAgent: agent, httpsAgent: agent }), proxied: true };
}
