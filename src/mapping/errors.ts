/*
 * The one error the mapping library throws. Every malformed input, every unusable mapping, ends
 * here with a stable SCREAMING_SNAKE `code` (listed in docs/device-mapping.md), the offending text
 * as `token`, and a one-line message that says what to change. resolveDeviceMapping reports every
 * problem at once: `problems` lists them all; for a single problem it holds that one.
 */

/** Codes that mean "the disks exist but a local disk is too small" (the CLI's exit 4); every other code is bad input. */
export const TOO_SMALL_CODES: readonly string[] = ["LOCAL_DISK_TOO_SMALL"];

/** One thing wrong with a mapping. */
export interface MappingProblem {
  code: string;
  token: string;
  message: string;
}

/** Thrown for every malformed or unusable device mapping; never a TypeError, never a partial result. */
export class DeviceMappingError extends Error {
  readonly code: string;
  readonly token: string;
  readonly problems: MappingProblem[];

  constructor(code: string, token: string, message: string, options?: { cause?: unknown; problems?: MappingProblem[] }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DeviceMappingError";
    this.code = code;
    this.token = token;
    this.problems = options?.problems ?? [{ code, token, message }];
  }

  /** One error for several problems: the shared code when they agree, else MULTIPLE_PROBLEMS. */
  static fromProblems(problems: MappingProblem[]): DeviceMappingError {
    const first = problems[0];
    if (first === undefined) throw new RangeError("fromProblems needs at least one problem");
    if (problems.length === 1) return new DeviceMappingError(first.code, first.token, first.message);
    const code = problems.every((p) => p.code === first.code) ? first.code : "MULTIPLE_PROBLEMS";
    const message = `the device mapping has ${problems.length} problems: ${problems.map((p) => p.message).join("; ")}`;
    return new DeviceMappingError(code, first.token, message, { problems });
  }
}

const SHOWN = 80;

/** A token as it appears inside a one-line message: quoted, escaped, and cut when long. */
export function quote(token: string): string {
  const cut = token.length > SHOWN ? `${token.slice(0, SHOWN)}...` : token;
  return JSON.stringify(cut);
}

/** Any value as token text, without calling its own toString (which may be missing or throw). */
export function show(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === null || typeof value !== "object") return typeof value === "symbol" ? "a symbol" : typeof value === "function" ? "a function" : String(value);
  return Array.isArray(value) ? "a list" : "an object";
}
