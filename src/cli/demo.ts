/*
 * `npm run demo`: a whole failback on local stand-ins, no AWS and no root. It starts the DRS
 * emulator with a built-in world, a real failback-agent serving two sample Recovery Instance
 * volumes (image files with real data), and the real failback-client failing back into two local
 * image files (one a stale copy of the original server's disk, one blank). When the first pass is
 * done it changes data on the "Recovery Instance", launches the failback through DRS, and once
 * the client reports success it compares the images byte for byte and says so. It cleans up.
 * `npm run demo -- --interactive` runs the client with its prompts instead of --no-prompt.
 */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DrsClient, StartFailbackLaunchCommand } from "@aws-sdk/client-drs";
import { changeBlocks, sha256File, writeVolume } from "./demo/volumes.js";
import { emulatorState, type DemoWorld } from "./demo/state.js";
import { programPath, startService, type Service } from "./demo/processes.js";

const MiB = 2 ** 20;

const world: DemoWorld = {
  // The documented example key of AWS: it means nothing anywhere but in this demo's emulator.
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "demo-secret-wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  account: "111122223333",
  region: "us-east-1",
  recoveryInstanceId: "i-0a1b2c3d4e5f60718",
  sourceServerId: "s-0a1b2c3d4e5f60718",
  hostname: "web-01",
  volumes: [
    { deviceName: "/dev/xvda", bytes: 256 * MiB },
    { deviceName: "/dev/xvdb", bytes: 128 * MiB },
  ],
  macAddress: "02:00:00:de:00:01",
  agentIp: "127.0.0.1",
  throttleMbps: 0,
};

async function freePort(preferred: number): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number | null>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(null));
      server.listen(port, "127.0.0.1", () => {
        const address = server.address();
        server.close(() => resolve(typeof address === "object" && address ? address.port : null));
      });
    });
  return (await tryPort(preferred)) ?? (await tryPort(0)) ?? 0;
}

function step(text: string): void {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

async function main(): Promise<number> {
  const interactive = process.argv.includes("--interactive");
  const dir = await mkdtemp(join(tmpdir(), "failback-demo-"));
  const services: Service[] = [];
  try {
    step("Recovery Instance volumes (what DRS holds in AWS), and this server's disks");
    const recovery = world.volumes.map((v) => ({ ...v, path: join(dir, `recovery${v.deviceName.replace(/\//g, "-")}.img`) }));
    for (const v of recovery) await writeVolume(v.path, `demo${v.deviceName}`, v.bytes / MiB);
    // The original server's first disk still holds the data as it was at failover; since then
    // the Recovery Instance changed 3% of it. The second disk is new and blank.
    const localA = join(dir, "local-sda.img");
    const localB = join(dir, "local-sdb.img");
    await writeVolume(localA, "demo/dev/xvda", 256);
    await changeBlocks(localA, "stale", Math.round((256 * MiB * 0.03) / 65536), 256 * MiB);
    await writeFile(localB, "");
    await truncate(localB, 128 * MiB);
    for (const v of recovery) process.stdout.write(`  ${v.deviceName}: ${v.bytes / MiB} MiB of mixed data (${v.path})\n`);
    process.stdout.write(`  local disk 1: ${localA} (stale copy: 3% of its blocks differ)\n  local disk 2: ${localB} (blank)\n`);

    step("DRS emulator (stands in for AWS on 127.0.0.1)");
    const statePath = join(dir, "drs-state.json");
    await writeFile(statePath, JSON.stringify(emulatorState(world), null, 2));
    const emulator = await startService(programPath("drs-emulator"), ["--state", statePath, "--listen", "127.0.0.1:0"]);
    services.push(emulator);
    process.stdout.write(`  listening on ${emulator.address}\n`);
    const env = { ...process.env, AWS_ENDPOINT_URL_STS: emulator.address, AWS_EC2_METADATA_DISABLED: "true" };
    const credentialFlags = ["--region", world.region, "--aws-access-key-id", world.accessKeyId, "--aws-secret-access-key", world.secretAccessKey];

    step("failback-agent on the Recovery Instance");
    const agentPort = await freePort(1500);
    const agent = await startService(
      programPath("agent"),
      [
        "--listen", `127.0.0.1:${agentPort}`,
        ...recovery.flatMap((v) => ["--volume", `${v.deviceName}=${v.path}`]),
        "--recovery-instance-id", world.recoveryInstanceId,
        "--state-dir", join(dir, "agent-state"),
        "--endpoint", emulator.address,
        ...credentialFlags,
      ],
      { env },
    );
    services.push(agent);
    process.stdout.write(`  listening on ${agent.address}\n`);

    step(`failback-client${interactive ? " (interactive)" : " --no-prompt"}`);
    const logFile = join(dir, "client.log");
    const mapping = `/dev/xvda=${localA},/dev/xvdb=${localB}`;
    const clientArgs = interactive
      ? [
          // This machine is not the demo's source server and its own disks are not images, so
          // the instance is named; everything else is asked.
          "--recovery-instance-id", world.recoveryInstanceId,
          "--log-file", logFile,
          "--state-dir", join(dir, "client-state"),
          ...(agentPort === 1500 ? [] : ["--agent-address", `127.0.0.1:${agentPort}`]),
        ]
      : [
          "--no-prompt",
          ...credentialFlags,
          "--endpoint", emulator.address,
          "--recovery-instance-id", world.recoveryInstanceId,
          "--device-mapping", mapping,
          "--log-file", logFile,
          "--state-dir", join(dir, "client-state"),
          ...(agentPort === 1500 ? [] : ["--agent-address", `127.0.0.1:${agentPort}`]),
        ];
    if (interactive) {
      process.stdout.write(
        `  Answer the prompts with:\n    access key id:   ${world.accessKeyId}\n    secret key:      ${world.secretAccessKey}\n` +
          `    session token:   (Enter)\n    region:          ${world.region}\n    endpoint:        ${emulator.address}\n` +
          `    local disk for /dev/xvda: ${localA}\n    local disk for /dev/xvdb: ${localB}\n    start the failback?: yes\n`,
      );
    }
    const client = spawn(process.execPath, [programPath("failback-client"), ...clientArgs], { env: { ...env, FAILBACK_POLL_SECONDS: "1" }, stdio: "inherit" });
    const clientExit = new Promise<number>((resolve) => client.once("exit", (code) => resolve(code ?? 1)));

    // When the first pass is verified, the Recovery Instance keeps changing (continuous
    // replication ships it), and then the failback is launched from "the console".
    const drs = new DrsClient({ region: world.region, endpoint: emulator.address, credentials: { accessKeyId: world.accessKeyId, secretAccessKey: world.secretAccessKey } });
    const launched = (async () => {
      for (let i = 0; i < 600; i += 1) {
        if (client.exitCode !== null) return;
        const log = await readFile(logFile, "utf8").catch(() => "");
        if (/pass-complete/.test(log)) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      if (client.exitCode !== null) return;
      process.stdout.write("\n  [demo] the Recovery Instance writes 2 MiB more while replication goes on...\n");
      await changeBlocks(recovery[1]!.path, "after-failover", 32, recovery[1]!.bytes);
      await new Promise((r) => setTimeout(r, 3000));
      process.stdout.write("  [demo] launching the failback (StartFailbackLaunch)...\n");
      await drs.send(new StartFailbackLaunchCommand({ recoveryInstanceIDs: [world.recoveryInstanceId] }));
    })();
    const code = await clientExit;
    await launched.catch(() => undefined);
    if (code !== 0) {
      process.stdout.write(`\nThe client exited with code ${code}; its log: ${logFile}\n`);
      return code;
    }

    step("Verification: local images vs Recovery Instance volumes");
    let same = true;
    for (const [i, v] of recovery.entries()) {
      const local = i === 0 ? localA : localB;
      const [a, b] = await Promise.all([sha256File(v.path), sha256File(local)]);
      same &&= a === b;
      process.stdout.write(`  ${v.deviceName} ${a.slice(0, 16)}…  ${local.split("/").pop()} ${b.slice(0, 16)}…  ${a === b ? "identical" : "DIFFERENT"}\n`);
    }
    process.stdout.write(same ? "\nVerified: every local image is byte-identical to its Recovery Instance volume.\n" : "\nVerification FAILED.\n");
    return same ? 0 : 6;
  } finally {
    await Promise.all(services.map((s) => s.stop()));
    await rm(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main().catch((error: unknown) => {
  process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
  return 1;
});
