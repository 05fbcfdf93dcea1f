/*
 * The text and JSON forms of `failback-client --list-devices`: each disk with its size (exact in
 * bytes, so 9.75 GiB is not mistaken for 10), model, every name a mapping may use in each
 * --dm-value-format, and whether it may be a target and, if not, why.
 */
import type { DiskInfo } from "../devices/index.js";
import { formatBytes } from "./format.js";

function target(d: DiskInfo): string {
  if (d.refusals.length > 0) return `no (${d.refusals.join("; ")})`;
  if (!d.offered) return `no (a ${d.kind} device${d.kind === "loop" ? "; --allow-loop offers it" : " is never offered"})`;
  return "yes";
}

export function formatInventory(disks: DiskInfo[], format: "text" | "json"): string {
  if (format === "json") {
    return `${JSON.stringify(
      {
        disks: disks.map((d) => ({
          name: d.name,
          kind: d.kind,
          bytes: d.bytes,
          logicalBlockSize: d.logicalBlockSize,
          model: d.model,
          serial: d.serial,
          vendor: d.vendor,
          readOnly: d.readOnly,
          removable: d.removable,
          rotational: d.rotational,
          byPath: d.byPath,
          byId: d.byId,
          byUuid: d.byUuid,
          partitions: d.partitions,
          mountpoints: d.mountpoints,
          target: d.offered && d.refusals.length === 0,
          refusals: d.refusals.length > 0 ? d.refusals : d.offered ? [] : [`a ${d.kind} device is not offered as a target`],
        })),
      },
      null,
      2,
    )}\n`;
  }
  if (disks.length === 0) return "No disks found.\n";
  const lines: string[] = [];
  for (const d of disks) {
    lines.push(`${d.name}  ${formatBytes(d.bytes)} (${d.bytes} bytes)  ${[d.vendor, d.model].filter(Boolean).join(" ") || d.kind}`);
    for (const name of d.byPath) lines.push(`    by-path  ${name}`);
    for (const name of d.byId) lines.push(`    by-id    ${name}`);
    for (const name of d.byUuid) lines.push(`    by-uuid  ${name}`);
    for (const p of d.partitions) {
      for (const name of [...p.byPath, ...p.byId, ...p.byUuid]) lines.push(`    partition ${p.name}: ${name}`);
    }
    lines.push(`    target: ${target(d)}`);
  }
  return `${lines.join("\n")}\n`;
}
