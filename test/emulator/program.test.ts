/*
 * failback-drs-emulator as a process, started from examples/emulator-state.json, answering the
 * unmodified SDK clients for every operation the project uses, and refusing what DRS refuses.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import {
  DescribeJobsCommand,
  DescribeRecoveryInstancesCommand,
  DescribeSourceServersCommand,
  DrsClient,
  GetFailbackReplicationConfigurationCommand,
  ListTagsForResourceCommand,
  StartFailbackLaunchCommand,
  StopFailbackCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateFailbackReplicationConfigurationCommand,
} from "@aws-sdk/client-drs";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startService, type Service } from "../../src/cli/demo/processes.js";

const program = resolve("dist/cli/drs-emulator.js");
const example = resolve("examples/emulator-state.json");
const KEY = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "example-secret-wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
const ID = "i-0a1b2c3d4e5f60718";
let emulator: Service;
const drs = (credentials = KEY) => new DrsClient({ region: "us-east-1", endpoint: emulator.address, credentials, maxAttempts: 1 });

beforeAll(async () => {
  emulator = await startService(program, ["--state", example, "--listen", "127.0.0.1:0"]);
});
afterAll(() => emulator?.stop());

describe("failback-drs-emulator", () => {
  it("answers STS GetCallerIdentity", async () => {
    const sts = new STSClient({ region: "us-east-1", endpoint: emulator.address, credentials: KEY });
    expect(await sts.send(new GetCallerIdentityCommand({}))).toMatchObject({ Account: "111122223333" });
  });

  it("answers every DRS operation the project uses", async () => {
    const c = drs();
    const instances = await c.send(new DescribeRecoveryInstancesCommand({ filters: {} }));
    expect(instances.items?.map((i) => i.recoveryInstanceID)).toEqual([ID, "i-0b2c3d4e5f6071829"]);
    const arn = instances.items![0]!.arn!;
    expect((await c.send(new DescribeSourceServersCommand({ filters: {} }))).items).toHaveLength(2);
    expect(await c.send(new GetFailbackReplicationConfigurationCommand({ recoveryInstanceID: ID }))).toMatchObject({ bandwidthThrottling: 500, usePrivateIP: true });
    await c.send(new UpdateFailbackReplicationConfigurationCommand({ recoveryInstanceID: ID, bandwidthThrottling: 100 }));
    expect((await c.send(new GetFailbackReplicationConfigurationCommand({ recoveryInstanceID: ID }))).bandwidthThrottling).toBe(100);
    await c.send(new TagResourceCommand({ resourceArn: arn, tags: { a: "1", b: "2" } }));
    await c.send(new UntagResourceCommand({ resourceArn: arn, tagKeys: ["a"] }));
    expect((await c.send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags).toEqual({ b: "2" });
    const { job } = await c.send(new StartFailbackLaunchCommand({ recoveryInstanceIDs: [ID] }));
    expect(job?.jobID).toMatch(/^drsjob-/);
    expect((await c.send(new DescribeJobsCommand({ filters: { jobIDs: [job!.jobID!] } }))).items?.[0]?.jobID).toBe(job!.jobID);
    expect((await c.send(new DescribeRecoveryInstancesCommand({ filters: { recoveryInstanceIDs: [ID] } }))).items?.[0]?.failback?.state).toBe("FAILBACK_LAUNCH_STATE_NOT_AVAILABLE");
    await c.send(new StopFailbackCommand({ recoveryInstanceID: ID }));
    expect((await c.send(new DescribeRecoveryInstancesCommand({ filters: { recoveryInstanceIDs: [ID] } }))).items?.[0]?.failback?.state).toBe("FAILBACK_NOT_STARTED");
  });

  it("pages with maxResults and nextToken", async () => {
    const first = await drs().send(new DescribeRecoveryInstancesCommand({ filters: {}, maxResults: 1 }));
    expect(first.items).toHaveLength(1);
    const second = await drs().send(new DescribeRecoveryInstancesCommand({ filters: {}, maxResults: 1, nextToken: first.nextToken }));
    expect(second.items?.[0]?.recoveryInstanceID).toBe("i-0b2c3d4e5f6071829");
    expect(second.nextToken).toBeUndefined();
  });

  it("refuses a request signed with a wrong secret, and an action the key may not call", async () => {
    await expect(drs({ ...KEY, secretAccessKey: "wrong" }).send(new DescribeRecoveryInstancesCommand({ filters: {} }))).rejects.toMatchObject({
      name: "InvalidSignatureException",
      $metadata: { httpStatusCode: 403 },
    });
    const readOnly = drs({ accessKeyId: "AKIAREADONLYEXAMPLE1", secretAccessKey: "read-only-secret-EXAMPLEKEY-0000000000000" });
    await expect(readOnly.send(new StartFailbackLaunchCommand({ recoveryInstanceIDs: [ID] }))).rejects.toMatchObject({ name: "AccessDeniedException" });
  });

  it("refuses a wrong state file at start, naming the field", async () => {
    const dir = await mkdtemp(join(tmpdir(), "emu-"));
    try {
      await writeFile(join(dir, "bad.json"), JSON.stringify({ credentials: [{ accessKeyId: "A", secretAccessKey: 5, account: "1" }] }));
      const error = await promisify(execFile)(process.execPath, [program, "--state", join(dir, "bad.json")]).catch((e: { code: number; stderr: string }) => e);
      expect(error).toMatchObject({ code: 2, stderr: "failback-drs-emulator: state file: credentials[0].secretAccessKey must be a non-empty string\n" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
