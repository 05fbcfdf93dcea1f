/*
 * The one place where failures become exit codes. The libraries throw coded errors and never exit;
 * this file reads their codes (and categories) and picks the documented exit code, so a script can
 * tell "fix your input" from "fix your credentials" from "fix the network" without parsing text.
 */
import { TOO_SMALL_CODES } from "../mapping/index.js";

/** Exit codes of failback-client (DESIGN.md, "Contracts"); documented in docs/cli.md. */
export const EXIT = {
  ok: 0,
  other: 1,
  badInput: 2,
  credentials: 3,
  noInstance: 4,
  agent: 5,
  replication: 6,
  cancelled: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error raised by the program itself, already carrying the exit code it stands for. */
export class CliError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;

  constructor(code: string, exitCode: ExitCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CliError";
    this.code = code;
    this.exitCode = exitCode;
  }
}

// Mapping problems that mean "the disks exist but are too small" are exit 4; every other mapping
// problem is bad input (exit 2). See docs/device-mapping.md.
const TOO_SMALL = new Set<string>(TOO_SMALL_CODES);

const REPLICATION_AGENT_CODES = new Set([
  "AGENT_UNREACHABLE",
  "AGENT_PAIRING_CHECK_FAILED",
  "PAIRING_REFUSED",
  "AGENT_IMPOSTOR",
  "TLS_VERSION",
  "PAIRING_TIMEOUT",
  "HANDSHAKE_FAILED",
]);

interface CodedError {
  name?: string;
  code?: unknown;
  category?: unknown;
  problems?: { code: string }[];
}

/** The exit code for any error that reached the top of the program. */
export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof CliError) return error.exitCode;
  if (typeof error !== "object" || error === null) return EXIT.other;
  const e = error as CodedError;
  const code = typeof e.code === "string" ? e.code : "";
  switch (e.name) {
    case "DeviceMappingError": {
      const codes = e.problems?.length ? e.problems.map((p) => p.code) : [code];
      return codes.every((c) => TOO_SMALL.has(c)) ? EXIT.noInstance : EXIT.badInput;
    }
    case "DrsError":
      switch (e.category) {
        case "input":
          return EXIT.badInput;
        case "credentials":
          return EXIT.credentials;
        case "not-found":
          return EXIT.noInstance;
        case "cancelled":
          return EXIT.cancelled;
        default:
          return EXIT.other;
      }
    case "ReplicationError":
      if (code === "CANCELLED") return EXIT.cancelled;
      return REPLICATION_AGENT_CODES.has(code) ? EXIT.agent : EXIT.replication;
    case "DevicesError":
      return EXIT.other;
    case "ExitPromptError":
    case "AbortPromptError":
      return EXIT.cancelled;
    default:
      return EXIT.other;
  }
}
