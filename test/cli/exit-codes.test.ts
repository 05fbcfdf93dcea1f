import { describe, expect, it } from "vitest";
import { CliError, EXIT, exitCodeFor } from "../../src/cli/exit-codes.js";
import { DeviceMappingError, parseDeviceMapping, resolveDeviceMapping } from "../../src/mapping/index.js";

const named = (name: string, fields: Record<string, unknown>) => Object.assign(new Error("x"), { name, ...fields });

function mappingError(run: () => unknown): DeviceMappingError {
  try {
    run();
  } catch (error) {
    if (error instanceof DeviceMappingError) return error;
  }
  throw new Error("expected a DeviceMappingError");
}

const GiB = 2 ** 30;
const recoveryDisks = [{ deviceName: "/dev/xvda", bytes: 10 * GiB }];
const local = (bytes: number) => [{ name: "/dev/sda", bytes, byPath: [], byId: [], byUuid: [] }];

describe("exitCodeFor", () => {
  it.each([
    ["a CliError keeps its own code", new CliError("X", EXIT.agent, "m"), 5],
    ["malformed mapping is bad input", mappingError(() => parseDeviceMapping("a=b,,c=d")), 2],
    ["a disk too small is exit 4", mappingError(() => resolveDeviceMapping([{ recoveryInstanceDeviceName: "/dev/xvda", failbackClientDeviceName: "/dev/sda" }], { valueFormat: "dev-name", recoveryDisks, localDisks: local(9 * GiB) })), 4],
    ["an unknown local disk is bad input", mappingError(() => resolveDeviceMapping([{ recoveryInstanceDeviceName: "/dev/xvda", failbackClientDeviceName: "/dev/sdz" }], { valueFormat: "dev-name", recoveryDisks, localDisks: local(10 * GiB) })), 2],
    ["DRS input", named("DrsError", { code: "INVALID_REGION", category: "input" }), 2],
    ["DRS credentials", named("DrsError", { code: "UNKNOWN_ACCESS_KEY", category: "credentials" }), 3],
    ["DRS not found", named("DrsError", { code: "RECOVERY_INSTANCE_NOT_FOUND", category: "not-found" }), 4],
    ["DRS unreachable", named("DrsError", { code: "ENDPOINT_UNREACHABLE", category: "unreachable" }), 1],
    ["agent unreachable", named("ReplicationError", { code: "AGENT_UNREACHABLE" }), 5],
    ["impostor agent", named("ReplicationError", { code: "AGENT_IMPOSTOR" }), 5],
    ["verification mismatch", named("ReplicationError", { code: "VERIFY_MISMATCH" }), 6],
    ["I/O error", named("ReplicationError", { code: "IO_ERROR" }), 6],
    ["Ctrl-C at a prompt", named("ExitPromptError", {}), 130],
    ["anything else", new TypeError("boom"), 1],
    ["not even an error", "text", 1],
  ])("%s", (_, error, code) => expect(exitCodeFor(error)).toBe(code));
});
