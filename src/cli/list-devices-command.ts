/*
 * `failback-client --list-devices`: this server's disks as a person writing a mapping wants them
 * (every name each goes by, and whether it may be a target and why not), or as JSON with --json.
 * Needs no credentials and touches no network.
 */
import { readInventory } from "../devices/index.js";
import { EXIT, type ExitCode } from "./exit-codes.js";
import { formatInventory } from "./list-devices.js";
import type { Settings } from "./settings.js";

export async function runListDevices(settings: Readonly<Settings>, write: (text: string) => void): Promise<ExitCode> {
  const disks = await readInventory({ root: settings.systemRoot, allowLoop: settings.allowLoop });
  write(formatInventory(disks, settings.json ? "json" : "text"));
  return EXIT.ok;
}
