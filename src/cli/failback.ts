/*
 * The failback, as a table of contents: settings -> credentials -> inventory -> instance ->
 * mapping -> plan (approved, at a terminal) -> pair -> replicate -> finish. Each step lives in
 * steps/ and takes what it needs as parameters; this file only orders them and says what happens
 * to the person.
 */
import type { ConsoleOut } from "./console.js";
import type { Log } from "./log.js";
import type { Prompter } from "./prompts.js";
import type { Settings } from "./settings.js";
import { connect } from "./steps/connect.js";
import { chooseInstance } from "./steps/choose-instance.js";
import { takeInventory, imageFileDisks } from "./steps/inventory.js";
import { asLocalDisks, mapVolumes } from "./steps/map-volumes.js";
import { describePlan, makePlan } from "./steps/plan.js";
import { approvePlan } from "./steps/approve-plan.js";
import { pair } from "./steps/pair.js";
import { confirmTargets } from "./steps/confirm-targets.js";
import { replicateUntilDone } from "./steps/replicate.js";
import { EXIT, type ExitCode } from "./exit-codes.js";

export interface FlowContext {
  settings: Readonly<Settings>;
  env: NodeJS.ProcessEnv;
  prompter: Prompter | null;
  log: Log;
  out: ConsoleOut;
  /** Aborted on SIGINT/SIGTERM: stop cleanly. */
  signal: AbortSignal;
}

/** Seconds the client waits for the agent's fingerprint to appear on the Recovery Instance. */
const PAIRING_WAIT_SECONDS = 300;

export async function runFailback(ctx: FlowContext): Promise<ExitCode> {
  const { settings, prompter, log, out } = ctx;
  const say = (line: string) => {
    out.say(line);
    log.info(line);
  };
  const warn = (line: string) => {
    out.warn(line);
    log.warn(line);
  };

  const connection = await connect(settings, prompter, log, ctx.env, ctx.signal);
  out.event("connected", { account: connection.account, region: connection.region });

  const inventory = await takeInventory(settings, log, warn);
  // Image files named in a dev-name mapping count as local disks when picking instances that fit.
  const mappingFiles =
    settings.deviceMapping !== undefined && settings.dmValueFormat === "dev-name"
      ? await imageFileDisks(settings.deviceMapping, asLocalDisks(inventory.disks))
      : [];
  const candidates = [...asLocalDisks(inventory.disks).filter((d) => !d.refusal), ...mappingFiles];

  const instance = await chooseInstance(connection, settings.recoveryInstanceId, inventory.identity, candidates, prompter, log, say);
  out.event("instance", { recoveryInstanceId: instance.id, hostname: instance.hostname });

  const mappings = await mapVolumes(instance, inventory.disks, { deviceMapping: settings.deviceMapping, valueFormat: settings.dmValueFormat }, prompter, log, say);

  const plan = await makePlan(connection, instance, mappings, settings.agentAddress);
  for (const line of describePlan(plan)) say(line);
  out.event("plan", {
    recoveryInstanceId: instance.id,
    volumes: mappings.map((m) => ({
      recoveryDevice: m.recoveryDisk.deviceName,
      recoveryBytes: m.recoveryDisk.bytes,
      localDevice: m.localDisk?.name ?? null,
      localBytes: m.localDisk?.bytes ?? null,
    })),
    agent: `${plan.agent.host}:${plan.agent.port}`,
    throttleMbps: plan.throttleMbps,
  });
  // --device-mapping names the disks to overwrite on the command line: that is the consent, as
  // --no-prompt is, and a runbook that gives it must not stop at a question.
  if (prompter && settings.deviceMapping === undefined) await approvePlan(plan, prompter);

  const pairing = await pair(
    connection,
    instance.id,
    { stateDir: settings.stateDir, pairingCode: settings.pairingCode, pollSeconds: settings.pollSeconds, waitSeconds: PAIRING_WAIT_SECONDS, hostname: inventory.identity.hostname },
    log,
    say,
    ctx.signal,
  );
  log.addSecret(settings.pairingCode);
  await confirmTargets(plan, inventory.disks, { systemRoot: settings.systemRoot, allowLoop: settings.allowLoop });

  const summary = await replicateUntilDone(connection, plan, pairing, { once: settings.once, pollSeconds: settings.pollSeconds }, ctx);
  if (ctx.signal.aborted) return EXIT.cancelled;

  const done = settings.once ? "First pass written, verified and flushed" : "Failback completed successfully";
  say(`${done}: ${summary}`);
  out.event("done", { once: settings.once, summary });
  return EXIT.ok;
}
