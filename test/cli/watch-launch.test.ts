import { describe, expect, it } from "vitest";
import { credentialToRenew } from "../../src/cli/steps/watch-launch.js";

describe("credentialToRenew", () => {
  it.each([
    ["EXPIRED_TOKEN", "flags", /^renew --aws-session-token \(and the --aws-access-key-id and --aws-secret-access-key issued with it\)$/],
    ["EXPIRED_TOKEN", "environment", /^renew AWS_SESSION_TOKEN/],
    ["EXPIRED_TOKEN", "prompt", /^get fresh temporary credentials/],
    ["UNKNOWN_ACCESS_KEY", "flags", /^replace --aws-access-key-id and --aws-secret-access-key with a working access key$/],
    ["BAD_SIGNATURE", "environment", /^replace AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/],
    ["NO_CREDENTIALS", "environment", /^check AWS_ACCESS_KEY_ID/],
  ] as const)("%s, credentials from %s", (code, source, phrase) => expect(credentialToRenew(code, source)).toMatch(phrase));

  it("says nothing for a missing permission: the message already names it", () => expect(credentialToRenew("ACCESS_DENIED", "flags")).toBeUndefined());
});
