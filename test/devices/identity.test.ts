import { rm } from "node:fs/promises";
import { hostname } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lowRamWarning, readIdentity, uuidSpellings } from "../../src/devices/index.js";
import { buildFakeMachine, SAMPLE_MACHINE } from "./fake-machine.js";

let root: string;
beforeAll(async () => {
  root = await buildFakeMachine(SAMPLE_MACHINE);
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe("readIdentity", () => {
  it("reads physical MACs, the SMBIOS UUID, hostname and RAM from a fake machine", async () => {
    const id = await readIdentity({ root });
    expect(id).toEqual({
      macs: ["02:00:00:aa:bb:01"],
      smbiosUuid: "4c4c4544-0042-3510-8052-b4c04f4b4e32",
      hostname: "web-01",
      fqdn: "web-01",
      ramBytes: 3_000_000 * 1024,
    });
    expect(lowRamWarning(id)).toMatch(/2\.9 GiB of RAM, below the 4 GiB/);
  });

  it("reads this machine itself", async () => {
    const id = await readIdentity({});
    expect(id.hostname).toBe(hostname());
    expect(id.ramBytes).toBeGreaterThan(0);
    for (const mac of id.macs) expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(typeof id.fqdn).toBe("string");
  });

  it("spells a UUID both ways, as the kernel and as VMware do", () => {
    expect(uuidSpellings("4c4c4544-0042-3510-8052-b4c04f4b4e32")).toEqual([
      "4c4c4544-0042-3510-8052-b4c04f4b4e32",
      "44454c4c-4200-1035-8052-b4c04f4b4e32",
    ]);
  });

  it("does not warn at 4 GiB or more", () => {
    expect(lowRamWarning({ macs: [], smbiosUuid: null, hostname: "h", fqdn: "h", ramBytes: 4 * 2 ** 30 })).toBeUndefined();
  });
});
