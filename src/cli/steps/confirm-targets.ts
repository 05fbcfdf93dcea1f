/*
 * Step 10b: the mapped local disks, looked at again just before replication. Pairing may wait
 * minutes after the plan was shown; meanwhile a USB or iSCSI disk can be unplugged and come back
 * under another name, another disk can take its name, a disk can be mounted, an image file can be
 * replaced. Writing then would overwrite a disk nobody mapped. Each target must still be what the
 * plan named: a disk of the same size, model and serial with still no reason to refuse it; a file
 * of the same size. From here the engine holds each disk open with O_EXCL until it is done.
 */
import { stat } from "node:fs/promises";
import { fileIdentity, readFilesInUse, readInventory, type DiskInfo } from "../../devices/index.js";
import { CliError, EXIT } from "../exit-codes.js";
import { formatBytes } from "../format.js";
import type { Plan } from "./plan.js";

const identify = (d: DiskInfo) => [formatBytes(d.bytes), d.model, d.serial && `serial ${d.serial}`].filter(Boolean).join(", ");

export async function confirmTargets(plan: Plan, planned: DiskInfo[], options: { systemRoot?: string; allowLoop?: boolean }): Promise<void> {
  const now = await readInventory({ root: options.systemRoot, allowLoop: options.allowLoop });
  // Image files are real files: what uses them is read from the real machine, as at the plan.
  const inUse = await readFilesInUse();
  const problems: string[] = [];
  for (const { localDisk } of plan.mappings) {
    if (!localDisk) continue;
    const was = planned.find((d) => d.name === localDisk.name);
    if (!was) {
      // An image file named in the mapping.
      const info = await stat(localDisk.name, { bigint: true }).catch(() => null);
      const uses = info ? inUse.get(fileIdentity(info)) : undefined;
      if (!info?.isFile()) problems.push(`${localDisk.name} is no longer a file`);
      else if (Number(info.size) !== localDisk.bytes) problems.push(`${localDisk.name} is now ${formatBytes(Number(info.size))}, not the ${formatBytes(localDisk.bytes)} of the plan`);
      else if (uses) problems.push(`${localDisk.name} cannot receive a volume any more: ${uses.join(", ")}`);
      continue;
    }
    const is = now.find((d) => d.name === was.name);
    if (!is) problems.push(`${was.name} is gone`);
    else if (is.bytes !== was.bytes || is.model !== was.model || is.serial !== was.serial) problems.push(`${was.name} is another disk now (${identify(is)}; the plan's was ${identify(was)})`);
    else if (is.refusal) problems.push(`${was.name} cannot receive a volume any more: ${is.refusal}`);
  }
  if (problems.length > 0) {
    throw new CliError("TARGET_CHANGED", EXIT.badInput, `the local disks changed since the plan: ${problems.join("; ")}. Nothing was written; check the disks and run again`);
  }
}
