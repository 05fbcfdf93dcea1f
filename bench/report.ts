/**
 * The bench's results: one record per figure (engine value, reference value, ratio, goal, verdict,
 * and the raw numbers), printed as a table for people or as one JSON document for machines.
 */

export interface Figure {
  readonly id: number;
  readonly title: string;
  /** The goal, as issue 6 states it. */
  readonly goal: string;
  /** null when the figure could not be measured, or has no pass/fail reading. */
  readonly pass: boolean | null;
  readonly engine: string;
  readonly reference: string;
  readonly ratio: string;
  /** The fastest time the unavoidable work allows on this machine, and the ratio that gives
   * (figures 1 and 3; bench/floor.ts). */
  readonly floor?: string;
  /** Extra lines shown under the table. */
  readonly notes: readonly string[];
  /** The raw numbers (seconds, bytes), for --json. */
  readonly data: Record<string, unknown>;
  readonly error?: string;
}

export function failedFigure(id: number, title: string, goal: string, error: unknown, data: Record<string, unknown> = {}): Figure {
  const message = error instanceof Error ? error.message : String(error);
  return { id, title, goal, pass: null, engine: "not measured", reference: String(data.referenceText ?? "-"), ratio: "-", notes: [], data, error: message };
}

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(2)} ${units[i]}`;
}

export function rate(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1e9).toFixed(3)} GB/s`;
}

export function secs(s: number): string {
  return `${s.toFixed(2)} s`;
}

export function renderTable(figures: readonly Figure[]): string {
  // The floor column only when a figure has one (figures 1 and 3), so `--only 2,4` stays narrow.
  const floors = figures.some((f) => f.floor !== undefined);
  const header = ["#", "figure", "engine", "reference (same run)", "ratio", ...(floors ? ["floor (same run)"] : []), "goal", "verdict"];
  const rows = figures.map((f) => [String(f.id), f.title, f.engine, f.reference, f.ratio, ...(floors ? [f.floor ?? "-"] : []), f.goal,
    f.error !== undefined ? "NOT MEASURED" : f.pass === null ? "-" : f.pass ? "met" : "NOT MET"]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  const out = [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line), ""];
  for (const f of figures) {
    if (f.error !== undefined) out.push(`(${f.id}) not measured: ${f.error}`);
    for (const n of f.notes) out.push(`(${f.id}) ${n}`);
  }
  return out.join("\n");
}
