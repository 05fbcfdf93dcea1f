import { describe, expect, it } from "vitest";
import { CliError } from "../../src/cli/exit-codes.js";
import { parseAgentAddress, readSettings } from "../../src/cli/settings.js";

const quiet = { out: () => undefined, err: () => undefined };
const read = (argv: string[], env: NodeJS.ProcessEnv = {}) => readSettings(argv, env, "0.0.0", quiet);

function failure(argv: string[], env: NodeJS.ProcessEnv = {}): CliError {
  try {
    read(argv, env);
  } catch (error) {
    if (error instanceof Error && "exitCode" in error) return error as CliError;
    throw error;
  }
  throw new Error(`no error for ${argv.join(" ")}`);
}

describe("parseAgentAddress", () => {
  it.each([
    ["10.0.1.23", { host: "10.0.1.23", port: 1500 }],
    ["10.0.1.23:2000", { host: "10.0.1.23", port: 2000 }],
    ["agent.example.internal", { host: "agent.example.internal", port: 1500 }],
    ["[fd00::5]:1501", { host: "fd00::5", port: 1501 }],
    ["fd00::5", { host: "fd00::5", port: 1500 }],
  ])("%s", (text, expected) => expect(parseAgentAddress(text)).toEqual(expected));

  it.each(["", "10.0.0.1:", "10.0.0.1:0", "10.0.0.1:70000", "10.0.0.1:http", "a b:1500", "http://x:1500"])("refuses %j", (text) => {
    expect(() => parseAgentAddress(text)).toThrow(/--agent-address .* is not HOST\[:PORT\]/);
  });
});

describe("readSettings", () => {
  it("merges flags and environment into one frozen object", () => {
    const s = read(["--no-prompt", "--once", "--json", "--dm-value-format", "by-path", "--device-mapping", "/dev/xvda=pci-0000:00:10.0-scsi-0:0:0:0"], {
      AWS_REGION: "eu-west-1",
      FAILBACK_SYSTEM_ROOT: "/tmp/fake",
    });
    expect(s).toMatchObject({ prompt: false, once: true, json: true, region: "eu-west-1", dmValueFormat: "by-path", systemRoot: "/tmp/fake" });
    expect(s?.deviceMapping).toEqual([{ recoveryInstanceDeviceName: "/dev/xvda", failbackClientDeviceName: "pci-0000:00:10.0-scsi-0:0:0:0" }]);
    expect(Object.isFrozen(s)).toBe(true);
  });

  it("--help says what exit 130 means: any Ctrl-C or SIGTERM, also after data was written", () => {
    let help = "";
    readSettings(["--help"], {}, "0.0.0", { out: (s) => (help += s), err: () => undefined });
    const code130 = help.slice(help.indexOf("\n  130 "), help.indexOf("\n\nExamples:"));
    expect(code130).toMatch(/Ctrl-C or SIGTERM, at a prompt or while replicating/);
    expect(code130).not.toMatch(/nothing was written/);
  });

  it("returns null for --help and --version", () => {
    expect(read(["--version"])).toBeNull();
    expect(read(["--help"])).toBeNull();
  });

  it.each([
    [["--dm-value-format", "by-label"], /by-label.*Allowed choices are dev-name, by-path, by-id, by-uuid, all-strict/],
    [["--recovery-instance-id", "i-xyz"], /--recovery-instance-id "i-xyz" is not an instance id/],
    [["--endpoint", "vpce-1.example", "--default-endpoint"], /contradict/],
    [["--aws-access-key-id", "AKIAIOSFODNN7EXAMPLE"], /without --aws-secret-access-key/],
    [["--bogus"], /unknown option '--bogus'/],
    [["--device-mapping", "/dev/xvda"], /^--device-mapping: "\/dev\/xvda" has no "="/],
    [["--agent-address", "x:y"], /--agent-address/],
  ])("refuses %j with exit code 2 and one line", (argv, message) => {
    const error = failure(argv);
    expect(error.exitCode).toBe(2);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain("\n");
  });
});
