/*
 * Steps 7-8: which local disk receives each recovery volume. --device-mapping wins (read in the
 * --dm-value-format); else the auto-mapping when the library is sure (failing back to the original
 * server); else the person answers per volume: a disk from the numbered list, its name, EXCLUDE, or
 * the whole mapping as one line (ALL="..."). The library checks every answer (existence, use twice,
 * size rule, disks that must never be written), so a wrong answer is asked again with its reason.
 */
import type { DiskInfo } from "../../devices/index.js";
import type { RecoveryInstanceView } from "../../drs/instances.js";
import {
  autoMapDevices,
  DeviceMappingError,
  parseDeviceMapping,
  resolveDeviceMapping,
} from "../../mapping/index.js";
import { EXCLUDE, type LocalDisk, type MappingEntry, type ResolvedMapping, type ValueFormat } from "../../mapping/types.js";
import { CliError, EXIT } from "../exit-codes.js";
import { formatBytes } from "../format.js";
import type { Log } from "../log.js";
import type { Prompter } from "../prompts.js";
import { imageFileDisks } from "./inventory.js";

/** Inventory disks as the mapping library sees them: a disk not offered carries its reason. */
export function asLocalDisks(disks: DiskInfo[]): LocalDisk[] {
  return disks.map((d) => ({
    name: d.name,
    bytes: d.bytes,
    byPath: d.byPath,
    byId: d.byId,
    byUuid: d.byUuid,
    partitions: d.partitions,
    refusal: d.refusal ?? (d.offered ? undefined : `a ${d.kind} device is not offered as a target${d.kind === "loop" ? " (pass --allow-loop to allow it)" : ""}`),
  }));
}

function describeDisks(recovery: RecoveryInstanceView, locals: LocalDisk[]): string {
  const r = recovery.disks.map((d) => `${d.deviceName} ${formatBytes(d.bytes)}`).join(", ");
  const l = locals.filter((d) => !d.refusal).map((d) => `${d.name} ${formatBytes(d.bytes)}`).join(", ") || "none";
  return `recovery volumes: ${r}; local disks: ${l}`;
}

async function resolveText(text: string, valueFormat: ValueFormat, instance: RecoveryInstanceView, locals: LocalDisk[]): Promise<ResolvedMapping[]> {
  const entries = parseDeviceMapping(text);
  return resolveEntries(entries, valueFormat, instance, locals);
}

async function resolveEntries(entries: MappingEntry[], valueFormat: ValueFormat, instance: RecoveryInstanceView, locals: LocalDisk[]): Promise<ResolvedMapping[]> {
  const files = valueFormat === "dev-name" ? await imageFileDisks(entries, locals) : [];
  return resolveDeviceMapping(entries, { valueFormat, recoveryDisks: instance.disks, localDisks: [...locals, ...files] });
}

/** Picks the mapping: flag, auto, or the person. */
export async function mapVolumes(
  instance: RecoveryInstanceView,
  disks: DiskInfo[],
  options: { deviceMapping?: MappingEntry[]; valueFormat: ValueFormat },
  prompter: Prompter | null,
  log: Log,
  say: (line: string) => void,
): Promise<ResolvedMapping[]> {
  const locals = asLocalDisks(disks);
  if (options.deviceMapping !== undefined) {
    return resolveEntries(options.deviceMapping, options.valueFormat, instance, locals);
  }

  // Refused disks too: autoMapDevices never proposes one, and a refused twin of the right size
  // (the mounted original, a RAID member) makes the other disk of that size a guess.
  const auto = autoMapDevices(instance.disks, locals, { sourceDisks: instance.sourceDisks });
  if (auto) {
    log.info(`volumes mapped automatically: ${auto.map((m) => `${m.recoveryDisk.deviceName}=${m.localDisk?.name ?? EXCLUDE}`).join(",")}`);
    return auto;
  }
  if (!prompter) {
    throw new CliError(
      "MAPPING_NEEDED",
      EXIT.badInput,
      `the volumes cannot be mapped automatically; pass --device-mapping (e.g. "${instance.disks.map((d) => `${d.deviceName}=...`).join(",")}"); ${describeDisks(instance, locals)}`,
    );
  }
  return askMapping(instance, locals, options.valueFormat, prompter, say);
}

/** One answer at the volume prompt: a whole mapping (ALL=...) or this volume's local disk. */
type Answer = { whole: ResolvedMapping[] } | { local: string };

async function askMapping(
  instance: RecoveryInstanceView,
  locals: LocalDisk[],
  valueFormat: ValueFormat,
  prompter: Prompter,
  say: (line: string) => void,
): Promise<ResolvedMapping[]> {
  const offered = locals.filter((d) => !d.refusal);
  say("Local disks:");
  offered.forEach((d, i) => say(`  ${String(i + 1).padStart(3)}. ${d.name}  ${formatBytes(d.bytes)}  ${[...d.byPath, ...d.byId].slice(0, 2).join("  ")}`));
  for (const d of locals.filter((x) => x.refusal)) say(`       ${d.name}  ${formatBytes(d.bytes)}  not a target: ${d.refusal}`);
  say(`Answer with a number, a disk name (${valueFormat}), ${EXCLUDE}, or the whole mapping as ALL="recovery=local,...".`);

  // Checks one answer against the answers so far, leaving the volumes not yet asked out for now,
  // so only this answer's own problems are reported.
  const check = async (answered: MappingEntry[], deviceName: string, local: string): Promise<string | null> => {
    const trial = [
      ...answered,
      { recoveryInstanceDeviceName: deviceName, failbackClientDeviceName: local },
      ...instance.disks.slice(answered.length + 1).map((d) => ({ recoveryInstanceDeviceName: d.deviceName, failbackClientDeviceName: EXCLUDE })),
    ];
    try {
      await resolveEntries(trial, valueFormat, instance, locals);
      return null;
    } catch (error) {
      if (!(error instanceof DeviceMappingError)) throw error;
      const own = error.problems.filter((p) => p.code !== "ALL_EXCLUDED");
      return own.length > 0 ? own.map((p) => p.message).join("; ") : null;
    }
  };

  const ask = async (answered: MappingEntry[], deviceName: string, bytes: number): Promise<Answer> => {
    for (;;) {
      const answer = await prompter.text(`Local disk for ${deviceName} (${formatBytes(bytes)}):`, {
        validate: (value) => (value === "" ? `Give a local disk, ${EXCLUDE}, or ALL="...".` : true),
      });
      if (/^ALL\s*=/i.test(answer)) {
        try {
          return { whole: await resolveText(answer, valueFormat, instance, locals) };
        } catch (error) {
          if (!(error instanceof DeviceMappingError)) throw error;
          say(`  ${error.message}`);
          continue;
        }
      }
      const n = /^\d+$/.test(answer) ? Number(answer) : NaN;
      const local = n >= 1 && n <= offered.length ? (offered[n - 1]?.name ?? answer) : answer.toUpperCase() === EXCLUDE ? EXCLUDE : answer;
      const problem = await check(answered, deviceName, local);
      if (problem === null) return { local };
      say(`  ${problem}`);
    }
  };

  for (;;) {
    const entries: MappingEntry[] = [];
    for (const disk of instance.disks) {
      const answer = await ask(entries, disk.deviceName, disk.bytes);
      if ("whole" in answer) return answer.whole;
      entries.push({ recoveryInstanceDeviceName: disk.deviceName, failbackClientDeviceName: answer.local });
    }
    try {
      return await resolveEntries(entries, valueFormat, instance, locals);
    } catch (error) {
      if (!(error instanceof DeviceMappingError)) throw error;
      say(`  ${error.message}; the mapping is asked again from the first volume.`);
    }
  }
}
