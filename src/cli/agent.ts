#!/usr/bin/env node
/*
 * failback-agent: runs on the Recovery Instance and serves its volumes on TCP 1500 to the one
 * client paired with it. Pairing through the control plane: it publishes its certificate's
 * fingerprint as a tag on the instance and, at each connection, accepts only the client whose
 * fingerprint the client tag holds. Manual modes: --client-fingerprint, or --pairing-code.
 */
import { hostname } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { readInventory } from "../devices/index.js";
import { checkCredentials, createClients, publishFingerprint, readFingerprint } from "../drs/index.js";
import { loadOrCreateIdentity, startAgent } from "../replication/index.js";

// The secret key may be on the command line: overwriting the title also overwrites what ps shows.
process.title = "failback-agent";

const collect = (value: string, previous: string[]) => [...previous, value];
const program = new Command("failback-agent")
  .description("Serve this Recovery Instance's volumes to its paired failback client over TCP 1500 (TLS 1.3)")
  .option("--listen <host:port>", "where to listen", "0.0.0.0:1500")
  .option("--volume <device=path>", "a volume to serve, by its DRS device name (repeatable; default: this machine's disks)", collect, [])
  .option("--state-dir <dir>", "where the agent keeps its key pair", "/var/lib/failback-agent")
  .option("--recovery-instance-id <id>", "this Recovery Instance (for control-plane pairing)")
  .option("--client-fingerprint <hex>", "manual pairing: the client certificate's sha256 fingerprint")
  .option("--pairing-code <code>", "manual pairing: a code given to both ends")
  .option("--aws-access-key-id <id>")
  .option("--aws-secret-access-key <secret>")
  .option("--aws-session-token <token>")
  .option("--region <region>")
  .option("--endpoint <url>")
  .parse();

interface Options {
  listen: string;
  volume: string[];
  stateDir: string;
  recoveryInstanceId?: string;
  clientFingerprint?: string;
  pairingCode?: string;
  awsAccessKeyId?: string;
  awsSecretAccessKey?: string;
  awsSessionToken?: string;
  region?: string;
  endpoint?: string;
}

const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

function fail(message: string): never {
  process.stderr.write(`failback-agent: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const o = program.opts<Options>();
  // Port 0 asks the kernel for a free port (tests); the line printed below says which.
  const match = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(o.listen);
  const listen = match && Number(match[2]) <= 65535 ? { host: match[1] || "0.0.0.0", port: Number(match[2]) } : fail(`--listen "${o.listen}" is not HOST:PORT (e.g. 0.0.0.0:1500)`);
  const volumes = o.volume.map((spec) => {
    const at = spec.indexOf("=");
    if (at <= 0 || at === spec.length - 1) fail(`--volume "${spec}" is not DEVICE=PATH`);
    return { deviceName: spec.slice(0, at), path: spec.slice(at + 1) };
  });
  if (volumes.length === 0) {
    // Without --volume, the instance's own disks, by their kernel names; the agent only reads them.
    const disks = (await readInventory({})).filter((d) => ["disk", "nvme", "xen", "virtio", "other"].includes(d.kind));
    if (disks.length === 0) fail("no disks found to serve: give --volume DEVICE=PATH");
    volumes.push(...disks.map((d) => ({ deviceName: d.name, path: d.name })));
  }
  const identity = await loadOrCreateIdentity(join(o.stateDir, "identity"), `failback-agent ${hostname()}`);
  log(`agent certificate fingerprint ${identity.fingerprint}`);

  let authorize: (fingerprint: string) => boolean | Promise<boolean>;
  if (o.pairingCode !== undefined) {
    authorize = () => true;
    log("manual pairing: clients must prove the pairing code");
  } else if (o.clientFingerprint) {
    const pinned = o.clientFingerprint.toLowerCase();
    authorize = (fingerprint) => fingerprint === pinned;
  } else {
    if (!o.recoveryInstanceId || !o.region) fail("pairing needs --recovery-instance-id and --region (or --client-fingerprint / --pairing-code)");
    const credentials = o.awsAccessKeyId && o.awsSecretAccessKey ? { accessKeyId: o.awsAccessKeyId, secretAccessKey: o.awsSecretAccessKey, sessionToken: o.awsSessionToken } : undefined;
    const clients = createClients({ region: o.region, endpoint: o.endpoint, credentials });
    const id = o.recoveryInstanceId;
    await checkCredentials(clients);
    await publishFingerprint(clients, id, "agent", identity.fingerprint);
    log(`published the agent fingerprint on ${id}`);
    authorize = async (fingerprint) => (await readFingerprint(clients, id, "client")) === fingerprint;
  }

  const agent = await startAgent({ host: listen.host, port: listen.port, volumes, identity, authorize, pairingCode: o.pairingCode, log });
  const shown = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  process.stdout.write(`listening on ${shown}:${agent.port}\n`);
  log(`serving ${volumes.map((v) => `${v.deviceName}=${v.path}`).join(", ")}`);
  const stop = (signal: string) => {
    log(`${signal}: stopping`);
    void agent.close().then(() => process.exit(0));
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

main().catch((error: unknown) => {
  process.stderr.write(`failback-agent: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
