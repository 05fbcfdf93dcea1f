/*
 * Starting the project's own programs as child processes and waiting for the line that says they
 * listen. Used by the demo and by the tests, so both run the real binaries the same way. Every
 * wait is bounded; every child is ended by its own process id.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** dist/cli/<name>.js, next to this file once compiled (dist/cli/demo/processes.js). */
export function programPath(name: string): string {
  return fileURLToPath(new URL(`../${name}.js`, import.meta.url));
}

export interface Service {
  child: ChildProcess;
  /** What followed "listening on " in the program's first lines. */
  address: string;
  /** Everything the program printed so far (stdout and stderr). */
  output(): string;
  stop(): Promise<void>;
}

export async function startService(
  program: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; onLine?: (line: string) => void } = {},
): Promise<Service> {
  const child = spawn(process.execPath, [program, ...args], { env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${program} did not say where it listens within ${options.timeoutMs ?? 20_000} ms; it printed: ${text.slice(-2000)}`));
    }, options.timeoutMs ?? 20_000);
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      for (const line of chunk.toString().split("\n")) if (line) options.onLine?.(line);
      const match = /listening on (\S+)/.exec(text);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${program} exited (${signal ?? code}) before listening: ${text.slice(-2000)}`));
    });
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return { child, address, output: () => text, stop };
}
