/*
 * While continuous replication runs, DRS is watched for the failback launch (drs/failback-state.ts).
 * The launch aborts `finish`: the engine's cue for its final sync. A watch that fails for good
 * aborts `stop` instead, and `failure` says why in one line with the exit code of its cause:
 * the engine would otherwise replicate on, waiting for a launch it can no longer see.
 */
import { DrsError } from "../../drs/errors.js";
import { GIVE_UP_AFTER_MS, waitForFailbackLaunch } from "../../drs/failback-state.js";
import { CliError, exitCodeFor } from "../exit-codes.js";
import type { FlowContext } from "../failback.js";
import type { Connection, CredentialSource } from "./connect.js";

export interface LaunchWatch {
  /** Aborted once the failback is launched. */
  finish: AbortSignal;
  /** Aborted when the watch failed for good; `failure` then holds why. */
  stop: AbortSignal;
  failure?: CliError;
  /** Ends the watch (replication is over). */
  end(): void;
}

/** What to do about a refused credential, as the person gave it; undefined when the message says it. */
export function credentialToRenew(code: string, source: CredentialSource): string | undefined {
  const keys = { flags: "--aws-access-key-id and --aws-secret-access-key", prompt: "the access key typed at the prompt", environment: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the profile's or role's credentials)" }[source];
  switch (code) {
    case "EXPIRED_TOKEN":
      return {
        flags: "renew --aws-session-token (and the --aws-access-key-id and --aws-secret-access-key issued with it)",
        prompt: "get fresh temporary credentials (access key, secret and session token)",
        environment: "renew AWS_SESSION_TOKEN (and the key issued with it), or the profile's or role's temporary credentials",
      }[source];
    case "UNKNOWN_ACCESS_KEY":
    case "BAD_SIGNATURE":
      return `replace ${keys} with a working access key`;
    case "ACCESS_DENIED":
      return undefined;
    default:
      return `check ${keys}`;
  }
}

function failureLine(error: DrsError, source: CredentialSource): CliError {
  let what = "run the client again once DRS answers";
  if (error.category === "credentials") {
    const renew = credentialToRenew(error.code, source);
    what = `${renew ? `${renew}, then` : "then"} run the client again`;
  }
  return new CliError(error.code, exitCodeFor(error), `replication stopped before the failback launch: ${error.message}; ${what} (it sends only what differs)`, { cause: error });
}

export function watchLaunch(connection: Connection, id: string, pollSeconds: number, ctx: FlowContext): LaunchWatch {
  const finish = new AbortController();
  const stop = new AbortController();
  const ended = new AbortController();
  const watch: LaunchWatch = { finish: finish.signal, stop: stop.signal, end: () => ended.abort() };
  waitForFailbackLaunch(connection.clients, id, {
    intervalMs: pollSeconds * 1000,
    signal: AbortSignal.any([ended.signal, ctx.signal]),
    onState: (state) => {
      ctx.log.info(`failback state of ${id}: ${state}`);
      ctx.out.event("failback-state", { state });
    },
    onFailure: (error) => {
      // A refused credential ends the watch at once, with its own line (below).
      if (error.category === "credentials") return;
      // Called once per distinct failure: a poll every few seconds must not flood the screen.
      const line = `cannot read the failback state of ${id}; replication goes on meanwhile, and stops if this lasts ${GIVE_UP_AFTER_MS / 60_000} min: ${error.message}`;
      ctx.log.warn(line);
      ctx.out.warn(line);
    },
  }).then(
    () => {
      ctx.out.say("Failback launched: final sync, verification and flush...");
      ctx.log.info("failback launched; finishing");
      finish.abort();
    },
    (error: unknown) => {
      if (ended.signal.aborted || ctx.signal.aborted) return;
      watch.failure = error instanceof DrsError ? failureLine(error, connection.credentialSource) : new CliError("FAILBACK_WATCH_FAILED", exitCodeFor(error), `replication stopped: watching ${id} for the failback launch failed: ${String(error)}`, { cause: error });
      ctx.log.error(watch.failure.message);
      stop.abort();
    },
  );
  return watch;
}
