/*
 * Every data-plane failure is a ReplicationError with a stable code and a message that says where
 * it happened ("agent: reading /dev/xvdb at 4096 MiB: EIO"). Codes listed in docs/protocol.md.
 */
export class ReplicationError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ReplicationError";
    this.code = code;
  }
}

/** Wraps an I/O failure with the side, the operation, the path and the offset. */
export function ioError(side: "agent" | "client", operation: string, path: string, offset: number, cause: unknown): ReplicationError {
  const code = (cause as NodeJS.ErrnoException)?.code ?? (cause instanceof Error ? cause.message : String(cause));
  return new ReplicationError("IO_ERROR", `${side}: ${operation} ${path} at ${Math.floor(offset / 2 ** 20)} MiB: ${code}`, { cause });
}
