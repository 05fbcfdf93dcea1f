/*
 * A whole failback world for the program's tests: the DRS emulator and a real failback-agent as
 * processes on 127.0.0.1, serving recovery volume images with real data, and a way to run the
 * built failback-client against them and collect its exit code, output and log.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { emulatorState, type DemoWorld } from "../../src/cli/demo/state.js";
import { startService, type Service } from "../../src/cli/demo/processes.js";
import { sha256File, writeVolume } from "../../src/cli/demo/volumes.js";
import { parseState, startEmulator, type Emulator } from "../../src/emulator/index.js";

export const MiB = 2 ** 20;
export const dist = (name: string) => resolve("dist/cli", `${name}.js`);

export const SECRET = "test-secret-Zq8vR2mW9xK4pL7nB3cJ6hT1yF5dG0sA";
export const SESSION_TOKEN = "test-session-token-IQoJb3JpZ2luX2VjEJr7wEaCXVzLWVhc3QtMSJHMEUCIQD";

/** The client's `--json` events: one JSON object a line on standard output, as far as they go. */
export function jsonEvents<T extends { type: string } = { type: string; [field: string]: unknown }>(stdout: string): T[] {
  return stdout
    .split("\n")
    .filter((line) => line.endsWith("}"))
    .map((line) => JSON.parse(line) as T);
}

export function baseWorld(overrides: Partial<DemoWorld> = {}): DemoWorld {
  return {
    accessKeyId: "AKIAIOSFODNN7EXAMPLE",
    secretAccessKey: SECRET,
    account: "111122223333",
    region: "us-east-1",
    recoveryInstanceId: "i-0123456789abcdef0",
    sourceServerId: "s-0123456789abcdef0",
    hostname: "db-07",
    volumes: [
      { deviceName: "/dev/xvda", bytes: 8 * MiB },
      { deviceName: "/dev/xvdb", bytes: 4 * MiB },
    ],
    macAddress: "02:00:00:00:07:01",
    agentIp: "127.0.0.1",
    throttleMbps: 0,
    ...overrides,
  };
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  log: string;
}

export class FailbackWorld {
  readonly dir: string;
  readonly world: DemoWorld;
  readonly recoveryImages: string[];
  emulator!: Pick<Service, "address" | "stop">;
  /** The emulator itself when it runs in this process (`inProcess`): its state can change mid-run. */
  drs?: Emulator;
  agent!: Service;

  private constructor(dir: string, world: DemoWorld) {
    this.dir = dir;
    this.world = world;
    this.recoveryImages = world.volumes.map((v, i) => join(dir, `recovery-${i}.img`));
  }

  /**
   * `inProcess` runs the emulator in the test's own process (`drs`), so a test can expire or
   * restrict a credential in the middle of a run; `agentFlags` are added to the agent's.
   */
  static async start(world: DemoWorld = baseWorld(), options: { sessionToken?: string; inProcess?: boolean; agentFlags?: string[] } = {}): Promise<FailbackWorld> {
    const dir = await mkdtemp(join(tmpdir(), "failback-world-"));
    const fw = new FailbackWorld(dir, world);
    try {
      for (const [i, v] of world.volumes.entries()) await writeVolume(fw.recoveryImages[i]!, `${world.recoveryInstanceId}${v.deviceName}`, v.bytes / MiB);
      const state = emulatorState(world) as { credentials: Record<string, unknown>[] };
      if (options.sessionToken) state.credentials[0]!.sessionToken = options.sessionToken;
      if (options.inProcess) {
        const drs = await startEmulator({ state: parseState(state, world.region) });
        fw.drs = drs;
        fw.emulator = { address: drs.url, stop: () => drs.close() };
      } else {
        await writeFile(join(dir, "state.json"), JSON.stringify(state));
        fw.emulator = await startService(dist("drs-emulator"), ["--state", join(dir, "state.json"), "--listen", "127.0.0.1:0"]);
      }
      fw.agent = await startService(
        dist("agent"),
        [
          "--listen", "127.0.0.1:0",
          ...world.volumes.flatMap((v, i) => ["--volume", `${v.deviceName}=${fw.recoveryImages[i]}`]),
          "--recovery-instance-id", world.recoveryInstanceId,
          "--state-dir", join(dir, "agent-state"),
          "--region", world.region,
          "--endpoint", fw.emulator.address,
          "--aws-access-key-id", world.accessKeyId,
          "--aws-secret-access-key", world.secretAccessKey,
          ...(options.sessionToken ? ["--aws-session-token", options.sessionToken] : []),
          ...(options.agentFlags ?? []),
        ],
        { env: fw.env() },
      );
    } catch (error) {
      await fw.stop();
      throw error;
    }
    return fw;
  }

  /** The environment every program of this world runs with: STS at the emulator, no IMDS. */
  env(): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: this.dir,
      AWS_ENDPOINT_URL_STS: this.emulator?.address,
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_CONFIG_FILE: join(this.dir, "no-aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(this.dir, "no-aws-credentials"),
      FAILBACK_POLL_SECONDS: "1",
    };
  }

  /** The agent's port, from its "listening on HOST:PORT" line. */
  get agentAddress(): string {
    return this.agent.address;
  }

  credentialFlags(): string[] {
    return ["--region", this.world.region, "--aws-access-key-id", this.world.accessKeyId, "--aws-secret-access-key", this.world.secretAccessKey];
  }

  /** Flags for a complete --no-prompt --once run into the given local targets. */
  onceFlags(mapping: string, extra: string[] = []): string[] {
    return [
      "--no-prompt",
      "--once",
      ...this.credentialFlags(),
      "--endpoint", this.emulator.address,
      "--recovery-instance-id", this.world.recoveryInstanceId,
      "--agent-address", this.agentAddress,
      "--device-mapping", mapping,
      "--state-dir", join(this.dir, "client-state"),
      ...extra,
    ];
  }

  /** Blank local images of the given sizes (sparse), fresh for each run. */
  async blankImages(prefix: string, sizes: number[]): Promise<string[]> {
    const paths = sizes.map((_, i) => join(this.dir, `${prefix}-${i}.img`));
    for (const [i, p] of paths.entries()) {
      await writeFile(p, "");
      await truncate(p, sizes[i]!);
    }
    return paths;
  }

  async runClient(
    args: string[],
    options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; onStart?: (pid: number) => void; stopAfterMs?: number; onStdout?: (text: string) => void } = {},
  ): Promise<Run> {
    const logFile = join(this.dir, `client-${Date.now()}-${Math.random().toString(36).slice(2)}.log`);
    const child = spawn(process.execPath, [dist("failback-client"), ...args, "--log-file", logFile], {
      env: { ...this.env(), ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (child.pid) options.onStart?.(child.pid);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
      options.onStdout?.(stdout);
    });
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    const stopTimer = options.stopAfterMs === undefined ? undefined : setTimeout(() => child.kill("SIGINT"), options.stopAfterMs);
    const code = await new Promise<number | null>((done) => child.once("exit", (c) => done(c)));
    clearTimeout(timer);
    clearTimeout(stopTimer);
    const log = await readFile(logFile, "utf8").catch(() => "");
    return { code, stdout, stderr, log };
  }

  async sameAsRecovery(index: number, localPath: string): Promise<boolean> {
    const [a, b] = await Promise.all([sha256File(this.recoveryImages[index]!), sha256File(localPath)]);
    return a === b;
  }

  async stop(): Promise<void> {
    await Promise.all([this.agent?.stop(), this.emulator?.stop()]);
    await rm(this.dir, { recursive: true, force: true });
  }
}
