/*
 * Flags and environment, read once into one frozen Settings object before any work starts.
 * Nothing downstream looks at argv or process.env again. Values are checked here, so a bad flag
 * fails in one line with exit code 2 before anything touches the network or a disk.
 */
import { Command, CommanderError, Option } from "commander";
import { DeviceMappingError, parseDeviceMapping } from "../mapping/index.js";
import { isValueFormat, VALUE_FORMATS, type MappingEntry, type ValueFormat } from "../mapping/types.js";
import { CliError, EXIT } from "./exit-codes.js";

export interface AgentAddress {
  host: string;
  port: number;
}

export interface Settings {
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  region?: string;
  endpoint?: string;
  defaultEndpoint: boolean;
  recoveryInstanceId?: string;
  dmValueFormat: ValueFormat;
  /** --device-mapping, parsed: a malformed mapping fails before anything else happens. */
  deviceMapping?: MappingEntry[];
  prompt: boolean;
  logConsole: boolean;
  logFile?: string;
  agentAddress?: AgentAddress;
  once: boolean;
  json: boolean;
  listDevices: boolean;
  systemRoot: string;
  allowLoop: boolean;
  stateDir: string;
  pairingCode?: string;
  /** Seconds between DRS polls while waiting for pairing and for the failback launch. */
  pollSeconds: number;
}

export const DEFAULT_AGENT_PORT = 1500;

const HELP_EXAMPLES = `
Exit codes:
  0    done: the failback completed (or, with --once, the first pass is written and verified)
  1    anything else (see the log)
  2    bad input: a flag, the device mapping, a value
  3    credentials refused, expired, or missing a permission (also while waiting for the launch)
  4    no usable Recovery Instance, or local disks too small for its volumes
  5    cannot reach or pair with the agent on the Recovery Instance
  6    replication failed (I/O error, verification mismatch)
  130  cancelled: Ctrl-C or SIGTERM, at a prompt or while replicating, or "no" to the
       plan (a new run sends only what differs)

Examples:
  Interactive, at the console of the server booted from the ISO:
    $ failback-client

  Unattended (mass failback), everything on the command line, JSON events for the automation:
    $ failback-client --no-prompt --json --region us-east-1 \\
        --aws-access-key-id AKIA... --aws-secret-access-key ... \\
        --recovery-instance-id i-0123456789abcdef0 \\
        --dm-value-format by-path \\
        --device-mapping "/dev/xvda=pci-0000:00:10.0-scsi-0:0:0:0,/dev/xvdb=EXCLUDE"

  See which local disks may be targets, and every name each goes by:
    $ failback-client --list-devices

  Through a VPC endpoint (PrivateLink), with credentials from the standard AWS environment:
    $ AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... failback-client --region ap-south-1 \\
        --endpoint vpce-0abc-xyz.drs.ap-south-1.vpce.amazonaws.com

Environment:
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE
                        used when no key is given on the command line
  AWS_REGION, AWS_DEFAULT_REGION
                        the region when --region is not given
  AWS_ENDPOINT_URL_DRS, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL
                        the SDK's standard endpoint overrides
  FAILBACK_SYSTEM_ROOT  same as --system-root
  FAILBACK_STATE_DIR    same as --state-dir

Documentation: docs/cli.md, docs/device-mapping.md, docs/events.md`;

/** The commander definition of failback-client; flags exactly as the DRS Failback Client's, plus ours. */
export function buildProgram(version: string): Command {
  return new Command("failback-client")
    .description(
      "Fail back an AWS Elastic Disaster Recovery Recovery Instance onto this server's own disks:\n" +
        "find the instance, map its volumes to local disks, pair with the agent on it over TCP 1500,\n" +
        "and pull the data home block by block until the failback is launched.",
    )
    .version(version, "--version", "print the version and exit")
    .helpOption("-h, --help", "show this help")
    .option("--aws-access-key-id <id>", "AWS access key id")
    .option("--aws-secret-access-key <secret>", "AWS secret access key (never logged)")
    .option("--aws-session-token <token>", "AWS session token for temporary credentials (never logged)")
    .option("--region <region>", "AWS region of the Recovery Instance, e.g. us-east-1")
    .option("--endpoint <url>", "custom DRS endpoint, e.g. a VPC endpoint host name (scheme optional)")
    .option("--default-endpoint", "use the default regional DRS endpoint without asking")
    .option("--recovery-instance-id <id>", "the Recovery Instance to fail back (i-...)")
    .addOption(
      new Option("--dm-value-format <format>", "how local disks are named in --device-mapping")
        .choices([...VALUE_FORMATS])
        .default("dev-name"),
    )
    .option("--device-mapping <mapping>", 'recovery=local pairs as CSV, a JSON object, or a DRS JSON list; "EXCLUDE" leaves a volume out')
    .option("--no-prompt", "never ask; fail with a clear message when an input is missing")
    .option("--log-console", "mirror the log on the console")
    .option("--log-file <path>", "write the log to this file")
    .option("--agent-address <host[:port]>", "the agent's address, skipping discovery through DRS (default port 1500)")
    .option("--once", "exit 0 once the first full pass is written, verified and flushed")
    .option("--json", "one JSON event a line on stdout (see docs/events.md)")
    .option("--list-devices", "list this server's disks, their names, and whether each may be a target; then exit")
    .option("--system-root <dir>", "read /sys, /dev and /proc under this folder (testing; default /)")
    .option("--allow-loop", "offer loop devices as targets (testing with image-backed devices)")
    .option("--state-dir <dir>", "where the client keeps its key pair and certificate for pairing (nothing else)")
    .option("--pairing-code <code>", "manual pairing with an agent started with the same code (no control plane)")
    .addHelpText("after", HELP_EXAMPLES)
    .showSuggestionAfterError(true)
    .allowExcessArguments(false);
}

interface RawOptions {
  awsAccessKeyId?: string;
  awsSecretAccessKey?: string;
  awsSessionToken?: string;
  region?: string;
  endpoint?: string;
  defaultEndpoint?: boolean;
  recoveryInstanceId?: string;
  dmValueFormat: string;
  deviceMapping?: string;
  prompt: boolean;
  logConsole?: boolean;
  logFile?: string;
  agentAddress?: string;
  once?: boolean;
  json?: boolean;
  listDevices?: boolean;
  systemRoot?: string;
  allowLoop?: boolean;
  stateDir?: string;
  pairingCode?: string;
}

const INSTANCE_ID = /^i-[0-9a-f]{8}([0-9a-f]{9})?$/;

/** Parses HOST[:PORT], [IPv6]:PORT or a bare IPv6 address. */
export function parseAgentAddress(text: string): AgentAddress {
  const bad = () =>
    new CliError("BAD_AGENT_ADDRESS", EXIT.badInput, `--agent-address "${text}" is not HOST[:PORT] (e.g. 10.0.1.23:1500 or [fd00::5]:1500)`);
  const trimmed = text.trim();
  let host: string;
  let port = DEFAULT_AGENT_PORT;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed);
  if (bracketed) {
    host = bracketed[1] ?? "";
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if ((trimmed.match(/:/g) ?? []).length > 1) {
    host = trimmed;
  } else {
    const [h, p] = trimmed.split(":");
    host = h ?? "";
    if (p !== undefined) port = p === "" ? NaN : Number(p);
  }
  if (!host || /\s|\//.test(host) || !Number.isInteger(port) || port < 1 || port > 65535) throw bad();
  return { host, port };
}

function nonEmpty(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v ? v : undefined;
}

function defaultStateDir(env: NodeJS.ProcessEnv, isRoot: boolean): string {
  if (env.FAILBACK_STATE_DIR) return env.FAILBACK_STATE_DIR;
  if (isRoot) return "/var/lib/failback-client";
  const base = env.XDG_STATE_HOME || `${env.HOME ?? "/tmp"}/.local/state`;
  return `${base}/failback-client`;
}

function parseMappingFlag(text: string): MappingEntry[] {
  try {
    return parseDeviceMapping(text);
  } catch (error) {
    if (!(error instanceof DeviceMappingError)) throw error;
    throw new CliError(`BAD_DEVICE_MAPPING`, EXIT.badInput, `--device-mapping: ${error.message}`, { cause: error });
  }
}

/** Merges parsed flags and the environment into the frozen Settings every step reads. */
export function toSettings(raw: RawOptions, env: NodeJS.ProcessEnv, isRoot: boolean): Readonly<Settings> {
  if (!isValueFormat(raw.dmValueFormat)) {
    throw new CliError("BAD_VALUE_FORMAT", EXIT.badInput, `--dm-value-format "${raw.dmValueFormat}" is not one of ${VALUE_FORMATS.join(", ")}`);
  }
  const recoveryInstanceId = nonEmpty(raw.recoveryInstanceId);
  if (recoveryInstanceId !== undefined && !INSTANCE_ID.test(recoveryInstanceId)) {
    throw new CliError(
      "BAD_INSTANCE_ID",
      EXIT.badInput,
      `--recovery-instance-id "${recoveryInstanceId}" is not an instance id (i- followed by 8 or 17 hex digits)`,
    );
  }
  if (raw.endpoint !== undefined && raw.defaultEndpoint) {
    throw new CliError("CONFLICTING_ENDPOINT", EXIT.badInput, "--endpoint and --default-endpoint contradict each other: give one");
  }
  const accessKeyId = nonEmpty(raw.awsAccessKeyId);
  const secretAccessKey = raw.awsSecretAccessKey || undefined;
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new CliError(
      "INCOMPLETE_CREDENTIALS",
      EXIT.badInput,
      accessKeyId ? "--aws-access-key-id was given without --aws-secret-access-key: give both" : "--aws-secret-access-key was given without --aws-access-key-id: give both",
    );
  }
  const pollSeconds = Number(env.FAILBACK_POLL_SECONDS ?? "10");
  return Object.freeze({
    accessKeyId,
    secretAccessKey,
    sessionToken: raw.awsSessionToken || undefined,
    region: nonEmpty(raw.region) ?? nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION),
    endpoint: nonEmpty(raw.endpoint),
    defaultEndpoint: raw.defaultEndpoint === true,
    recoveryInstanceId,
    dmValueFormat: raw.dmValueFormat,
    deviceMapping: raw.deviceMapping === undefined ? undefined : parseMappingFlag(raw.deviceMapping),
    prompt: raw.prompt,
    logConsole: raw.logConsole === true,
    logFile: nonEmpty(raw.logFile),
    agentAddress: raw.agentAddress === undefined ? undefined : parseAgentAddress(raw.agentAddress),
    once: raw.once === true,
    json: raw.json === true,
    listDevices: raw.listDevices === true,
    systemRoot: nonEmpty(raw.systemRoot) ?? nonEmpty(env.FAILBACK_SYSTEM_ROOT) ?? "/",
    allowLoop: raw.allowLoop === true,
    stateDir: nonEmpty(raw.stateDir) ?? defaultStateDir(env, isRoot),
    pairingCode: raw.pairingCode || undefined,
    pollSeconds: Number.isFinite(pollSeconds) && pollSeconds > 0 ? pollSeconds : 10,
  });
}

/**
 * Parses argv into Settings. Help and version print and return null (exit 0); a commander error
 * (unknown flag, bad choice) becomes a CliError with exit code 2.
 */
export function readSettings(
  argv: string[],
  env: NodeJS.ProcessEnv,
  version: string,
  output: { out: (s: string) => void; err: (s: string) => void },
): Readonly<Settings> | null {
  const program = buildProgram(version)
    .exitOverride()
    .configureOutput({ writeOut: output.out, writeErr: () => undefined });
  try {
    program.parse(argv, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help") {
        return null;
      }
      const line = error.message.replace(/^error:\s*/i, "");
      throw new CliError("BAD_FLAG", EXIT.badInput, `${line} (see failback-client --help)`);
    }
    throw error;
  }
  return toSettings(program.opts<RawOptions>(), env, process.getuid?.() === 0);
}
