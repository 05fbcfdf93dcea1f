#!/usr/bin/env node
/*
 * failback-agent: runs on the Recovery Instance and serves its volumes on TCP 1500 to the one
 * client paired with it. Pairing through the control plane: it publishes its certificate's
 * fingerprint as a tag on the instance and, at each connection, accepts only the client whose
 * fingerprint the client tag holds. --client-fingerprint pins the client by hand instead of trusting
 * that tag (the agent still publishes its own fingerprint, which the client pins); --pairing-code
 * pairs without DRS at all.
 *
 * Exit codes (docs/cli.md): 0 stopped by SIGTERM or SIGINT; 2 bad flags; 1 anything else.
 */
import { hostname } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { readInventory } from "../devices/index.js";
import { checkCredentials, createClients, publishFingerprint, readFingerprint } from "../drs/index.js";
import { loadOrCreateIdentity, startAgent, type Agent } from "../replication/index.js";

// The secret key may be on the command line: overwriting the title also overwrites what ps shows.
process.title = "failback-agent";

const collect = (value: string, previous: string[]) => [...previous, value];
const program = new Command("failback-agent")
  .description("Serve this Recovery Instance's volumes to its paired failback client over TCP 1500 (TLS 1.3)")
  .option("--listen <host:port>", "where to listen", "0.0.0.0:1500")
  .option("--volume <device=path>", "a volume to serve, by its DRS device name (repeatable; default: this machine's disks)", collect, [])
  .option("--state-dir <dir>", "where the agent keeps its key pair", "/var/lib/failback-agent")
  .option("--recovery-instance-id <id>", "this Recovery Instance (for control-plane pairing)")
  .option("--client-fingerprint <hex>", "serve only the client with this certificate sha256 fingerprint, not the one the DRS tag names (still needs DRS to publish the agent's)")
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

/** How long a stop waits for the sessions to close their volumes and write trackers. */
const STOP_WAIT_MS = 10_000;

const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

function fail(message: string): never {
  process.stderr.write(`failback-agent: ${message}\n`);
  process.exit(2);
}

/** A certificate fingerprint as the client logs it, or as `openssl x509 -fingerprint -sha256` prints it. */
function parseFingerprint(text: string): string {
  const hex = text.trim().replace(/^sha256 fingerprint=/i, "").replace(/:/g, "").toLowerCase();
  if (/^[0-9a-f]{64}$/.test(hex)) return hex;
  return fail(`--client-fingerprint "${text}" is not a sha256 certificate fingerprint: 64 hex digits, as the client's log shows after "client certificate fingerprint"`);
}

type PairingMode = { mode: "code" } | { mode: "drs"; id: string; region: string; pinned?: string };

/** How this agent pairs, from the flags; a combination that cannot pair fails here, before any work. */
function pairingMode(o: Options): PairingMode {
  if (o.pairingCode !== undefined) {
    if (o.clientFingerprint !== undefined) fail("--client-fingerprint and --pairing-code are two ways of pairing: give one");
    return { mode: "code" };
  }
  const pinned = o.clientFingerprint === undefined ? undefined : parseFingerprint(o.clientFingerprint);
  if (!o.recoveryInstanceId || !o.region) {
    // The client pins the agent only by the fingerprint the agent publishes through DRS: without
    // DRS, a client would wait for it in vain (AGENT_NOT_PAIRED after 300 s).
    fail(
      pinned
        ? "--client-fingerprint needs --recovery-instance-id and --region too: the client pins this agent by the fingerprint the agent publishes through DRS; without DRS access, start both ends with --pairing-code"
        : "pairing needs --recovery-instance-id and --region (or --pairing-code on both ends)",
    );
  }
  return { mode: "drs", id: o.recoveryInstanceId, region: o.region, pinned };
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
  const pairing = pairingMode(o);
  if (volumes.length === 0) {
    // Without --volume, the instance's own disks, by their kernel names; the agent only reads them.
    const disks = (await readInventory({})).filter((d) => ["disk", "nvme", "xen", "virtio", "other"].includes(d.kind));
    if (disks.length === 0) fail("no disks found to serve: give --volume DEVICE=PATH");
    volumes.push(...disks.map((d) => ({ deviceName: d.name, path: d.name })));
  }
  const identity = await loadOrCreateIdentity(join(o.stateDir, "identity"), `failback-agent ${hostname()}`);
  log(`agent certificate fingerprint ${identity.fingerprint}`);

  let authorize: (fingerprint: string) => boolean | Promise<boolean>;
  if (pairing.mode === "code") {
    authorize = () => true;
    log("manual pairing: clients must prove the pairing code");
  } else {
    const { id, region, pinned } = pairing;
    const credentials = o.awsAccessKeyId && o.awsSecretAccessKey ? { accessKeyId: o.awsAccessKeyId, secretAccessKey: o.awsSecretAccessKey, sessionToken: o.awsSessionToken } : undefined;
    const clients = createClients({ region, endpoint: o.endpoint, credentials });
    await checkCredentials(clients);
    await publishFingerprint(clients, id, "agent", identity.fingerprint);
    log(`published the agent fingerprint on ${id}`);
    if (pinned) log(`serving only the client pinned by --client-fingerprint ${pinned}, whatever the client tag says`);
    authorize = pinned ? (fingerprint) => fingerprint === pinned : async (fingerprint) => (await readFingerprint(clients, id, "client")) === fingerprint;
  }

  const agent = await startAgent({ host: listen.host, port: listen.port, volumes, identity, authorize, pairingCode: o.pairingCode, log });
  // Before the line that says the agent is ready: a supervisor may stop it as soon as it reads it.
  stopOnSignals(agent);
  const shown = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  process.stdout.write(`listening on ${shown}:${agent.port}\n`);
  log(`serving ${volumes.map((v) => `${v.deviceName}=${v.path}`).join(", ")}`);
}

/**
 * SIGTERM or SIGINT: no new connections, every session ended, and exit 0 once each has closed
 * what it opened (bounded); exiting before would leave their trace instances in the kernel until
 * the next agent starts. A second signal exits at once (1).
 */
function stopOnSignals(agent: Agent): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log(`${signal} again: exiting now; the next agent removes what the sessions leave`);
      process.exit(1);
    }
    stopping = true;
    log(`${signal}: stopping: no new connections; ending the sessions`);
    void agent.close({ waitMs: STOP_WAIT_MS }).then(({ sessions, unfinished }) => {
      log(
        unfinished === 0
          ? `stopped: ${sessions} session(s) ended and cleaned up`
          : `stopped: ${unfinished} of ${sessions} session(s) still cleaning up after ${STOP_WAIT_MS / 1000} s; the next agent removes what they leave`,
      );
      process.exit(0);
    });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((error: unknown) => {
  process.stderr.write(`failback-agent: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
