/**
 * A shaped link of our own: two network namespaces joined by a veth pair, each end's egress held to
 * a rate by a tbf qdisc. The 10.x addresses exist only inside these namespaces, so nothing on the
 * host's own network is touched. destroy() removes both namespaces (which removes the veth pair);
 * the bench calls it in a finally and on SIGINT.
 */
import { readFileSync } from "node:fs";
import { run } from "./proc.js";

export interface ShapedLink {
  readonly agentNs: string;
  readonly clientNs: string;
  readonly agentIp: string;
  readonly clientIp: string;
  readonly rateBitsPerSecond: number;
  /** Bytes the client's veth end has received so far (from the namespace's /proc/net/dev). */
  clientRxBytes(): Promise<number>;
  destroy(): Promise<void>;
}

/** Creates the namespaces and the link; on any failure, removes whatever it had made. */
export async function createShapedLink(rateMbit: number): Promise<ShapedLink> {
  const tag = `${process.pid % 100000}`;
  const agentNs = `fbb-a-${tag}`;
  const clientNs = `fbb-c-${tag}`;
  const agentIf = `fbba${tag}`;
  const clientIf = `fbbc${tag}`;
  const net = 1 + (process.pid % 250);
  const agentIp = `10.213.${net}.1`;
  const clientIp = `10.213.${net}.2`;
  const destroy = async (): Promise<void> => {
    for (const ns of [agentNs, clientNs]) {
      await run("ip", ["netns", "delete", ns], { timeoutMs: 10_000 }).catch(() => undefined);
    }
  };
  const ip = (...args: string[]) => run("ip", args, { timeoutMs: 10_000 });
  // tbf: burst must hold at least rate/HZ; 512 KiB is ample at 1 Gbit/s and keeps the shaping tight.
  const tbf = ["root", "tbf", "rate", `${rateMbit}mbit`, "burst", "512kb", "latency", "25ms"];
  try {
    await ip("netns", "add", agentNs);
    await ip("netns", "add", clientNs);
    await ip("link", "add", agentIf, "type", "veth", "peer", "name", clientIf);
    await ip("link", "set", agentIf, "netns", agentNs);
    await ip("link", "set", clientIf, "netns", clientNs);
    await ip("-n", agentNs, "addr", "add", `${agentIp}/30`, "dev", agentIf);
    await ip("-n", clientNs, "addr", "add", `${clientIp}/30`, "dev", clientIf);
    for (const [ns, dev] of [[agentNs, agentIf], [clientNs, clientIf]] as const) {
      await ip("-n", ns, "link", "set", "lo", "up");
      await ip("-n", ns, "link", "set", dev, "up");
      await run("tc", ["-n", ns, "qdisc", "add", "dev", dev, ...tbf], { timeoutMs: 10_000 });
    }
  } catch (e) {
    await destroy();
    throw e;
  }
  return {
    agentNs, clientNs, agentIp, clientIp, rateBitsPerSecond: rateMbit * 1e6,
    async clientRxBytes() {
      const r = await run("ip", ["netns", "exec", clientNs, "cat", "/proc/net/dev"], { timeoutMs: 5000 });
      return rxBytes(r.stdout, clientIf);
    },
    destroy,
  };
}

/** The receive byte counter of one interface in a /proc/net/dev listing. */
export function rxBytes(procNetDev: string, dev: string): number {
  for (const line of procNetDev.split("\n")) {
    const [name, rest] = line.split(":");
    if (name?.trim() === dev && rest !== undefined) {
      const n = Number(rest.trim().split(/\s+/)[0]);
      if (Number.isFinite(n)) return n;
    }
  }
  throw new Error(`bench: interface ${dev} not in /proc/net/dev`);
}

/** True when this process may create namespaces (root, and `ip` present). */
export function canMakeNamespaces(): boolean {
  try {
    return process.getuid?.() === 0 && readFileSync("/proc/self/status", "utf8").includes("CapEff");
  } catch {
    return false;
  }
}
