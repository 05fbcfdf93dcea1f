/*
 * What /proc says about block devices in use: mounts (from mountinfo, which names the device by
 * major:minor even when the source path is a symlink or a mapper name) and swap areas.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export interface Mount {
  devNumber: string;
  mountPoint: string;
  fsType: string;
  source: string;
}

// mountinfo escapes space, tab, newline and backslash in paths as octal (proc(5)).
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

async function read(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return "";
  }
}

/** Parses <root>/proc/self/mountinfo: "id parent major:minor root mountpoint opts ... - fstype source superopts". */
export async function readMounts(root: string): Promise<Mount[]> {
  const mounts: Mount[] = [];
  for (const line of (await read(join(root, "proc", "self", "mountinfo"))).split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    if (fields.length < 7 || dash < 6) continue;
    mounts.push({
      devNumber: fields[2] ?? "",
      mountPoint: unescape(fields[4] ?? ""),
      fsType: fields[dash + 1] ?? "",
      source: unescape(fields[dash + 2] ?? ""),
    });
  }
  return mounts;
}

/** Device paths in <root>/proc/swaps (its first column, after the header line). */
export async function readSwaps(root: string): Promise<string[]> {
  return (await read(join(root, "proc", "swaps")))
    .split("\n")
    .slice(1)
    .map((line) => unescape(line.split(/\s+/)[0] ?? ""))
    .filter((name) => name.startsWith("/"));
}
