/**
 * Loads the replication engine from the built dist/ (what `npm run build` produced), so the bench
 * measures the code the product ships, not a transpiled copy of src/.
 */
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export type Engine = typeof import("../src/replication/index.js");

/** Imports dist/replication/index.js, with a clear error when the build is missing. */
export async function loadEngine(): Promise<Engine> {
  const path = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "replication", "index.js");
  try {
    return (await import(pathToFileURL(path).href)) as Engine;
  } catch (e) {
    throw new Error(`bench: cannot load the engine from ${path} (run npm run build): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
