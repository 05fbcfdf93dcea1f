/**
 * `npm run bench`: the performance figures of issue 6, each next to its reference measured in this
 * same invocation. Options:
 *   --size 2G        mixed image size (default 2 GiB; e.g. 512M for a quick look)
 *   --seed 1         image seed
 *   --only 1,2       figures to run (default all five)
 *   --quick          a smoke run: 256 MiB image, 4 GiB sparse volume, 128 MiB per link image, one run each
 *   --repeats 3      runs of figures 1 and 3 (engine and reference each); the fastest of each counts
 *   --sparse 16G     volume size of figure 4;  --link-size 512M  image size per run of figure 5
 *   --cache DIR      where images are kept (default /var/tmp/failback-bench)
 *   --json           one JSON document on stdout instead of the table
 * Progress goes to stderr. Work files are removed at the end; cached images are kept for reuse.
 */
import { cpus, totalmem } from "node:os";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureImage, parseSize, regionMix } from "./generator.js";
import { figure1, figure2, figure3, figure4, figure5, type BenchContext } from "./figures.js";
import { killAll } from "./proc.js";
import { bytes, renderTable, type Figure } from "./report.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      size: { type: "string" },
      seed: { type: "string", default: "1" },
      only: { type: "string", default: "1,2,3,4,5" },
      quick: { type: "boolean", default: false },
      repeats: { type: "string" },
      sparse: { type: "string" },
      "link-size": { type: "string" },
      "link-mbit": { type: "string", default: "1000" },
      cache: { type: "string", default: "/var/tmp/failback-bench" },
      json: { type: "boolean", default: false },
    },
    strict: true,
  });
  const quick = values.quick === true;
  const size = parseSize(values.size ?? (quick ? "256M" : "2G"));
  const seed = Number(values.seed);
  const repeats = Number(values.repeats ?? (quick ? 1 : 3));
  if (!Number.isInteger(repeats) || repeats < 1 || repeats > 20) throw new Error(`bench: --repeats takes a whole number from 1 to 20, got ${values.repeats}`);
  const only = new Set(String(values.only).split(",").map((s) => Number(s.trim())));
  for (const n of only) if (![1, 2, 3, 4, 5].includes(n)) throw new Error(`bench: --only takes figure numbers 1..5, got ${n}`);
  const cacheDir = String(values.cache);
  const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

  const missing = ["socat", "rsync", "ip", "tc", "sha256sum", "dd"].filter((t) => !onPath(t));
  if (missing.length > 0) throw new Error(`bench: missing ${missing.join(", ")}; install with: apt-get install socat rsync iproute2`);
  if (!existsSync(join(root, "dist", "replication", "index.js"))) log("dist/replication/index.js is missing: engine figures will say why (run npm run build)");

  const workDir = join(cacheDir, `run-${process.pid}`);
  mkdirSync(workDir, { recursive: true });
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    killAll();
    for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once("SIGINT", () => {
    log("interrupted: removing namespaces, processes and work files");
    void cleanup().finally(() => process.exit(130));
  });

  try {
    log(`image: mixed, ${bytes(size)}, seed ${seed} (cache ${cacheDir})`);
    const image = ensureImage(cacheDir, { seed, size, profile: "mixed" }, (n) => log(`  writing image: ${bytes(n)}`));
    const ctx: BenchContext = {
      image, cacheDir, workDir, seed, repeats,
      sparseSize: parseSize(values.sparse ?? (quick ? "4G" : "16G")),
      linkImageSize: parseSize(values["link-size"] ?? (quick ? "128M" : size >= 512 * 2 ** 20 ? "512M" : String(size))),
      linkRateMbit: Number(values["link-mbit"]),
      onCleanup: (fn) => { cleanups.push(fn); },
      log,
    };
    const figures: Figure[] = [];
    const table = [figure1, figure2, figure3, figure4, figure5] as const;
    for (const [i, fig] of table.entries()) {
      if (only.has(i + 1)) figures.push(await fig(ctx));
    }
    const machine = {
      cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "unknown", memoryBytes: totalmem(),
      kernel: readFileSync("/proc/sys/kernel/osrelease", "utf8").trim(), node: process.version,
    };
    if (values.json === true) {
      process.stdout.write(`${JSON.stringify({ date: new Date().toISOString(), machine, image: { path: image.path, bytes: size, seed, sha256: image.sha256, mix: regionMix(image.regions) }, figures }, null, 2)}\n`);
    } else {
      const mix = regionMix(image.regions);
      process.stdout.write(`failback bench, ${new Date().toISOString()}, ${machine.cpus} x ${machine.cpuModel}, ${bytes(machine.memoryBytes)} RAM, Linux ${machine.kernel}, Node ${machine.node}\n`);
      process.stdout.write(`image ${bytes(size)} seed ${seed}: random ${bytes(mix.random)}, zero ${bytes(mix.zero)}, text ${bytes(mix.text)}, repeated ${bytes(mix.repeat)}\n\n`);
      process.stdout.write(`${renderTable(figures)}\n`);
    }
    return figures.some((f) => f.error !== undefined) ? 1 : 0;
  } finally {
    await cleanup();
  }
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? "").split(":").some((d) => d !== "" && existsSync(join(d, tool)));
}

main().then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 2;
});
