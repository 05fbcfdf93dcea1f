/*
 * The live ISO's /usr/bin/start.sh, run on the host: how the DRS start.sh variables (from the
 * environment or the kernel command line) become the client's flags and environment, and how bad
 * network values are refused before anything changes. The programs it calls (failback-client,
 * networkctl, systemctl, ip) are stand-ins on PATH that record how they were called; the real ones
 * run in the boot test (iso-boot.test.ts).
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const START_SH = resolve("iso-build/overlay/usr/bin/start.sh");
const dir = mkdtempSync(join(tmpdir(), "failback-start-sh-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Each stand-in appends one JSON line per call to calls.log: its name, its arguments, the
// environment variables start.sh is expected to set, and the networkd file as it is then. Every
// program that could change this machine (networkctl, systemctl, eject, sync) is one of them.
const NETWORK_FILE = join(dir, "10-failback-static.network");
const recorder = (name: string, exit: string) => `#!/usr/bin/env node
const fs = require("node:fs");
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(AWS_|HTTPS_PROXY)/.test(k)));
const network = fs.existsSync(${JSON.stringify(NETWORK_FILE)}) ? fs.readFileSync(${JSON.stringify(NETWORK_FILE)}, "utf8") : null;
fs.appendFileSync(${JSON.stringify(join(dir, "calls.log"))}, JSON.stringify({ name: ${JSON.stringify(name)}, args: process.argv.slice(2), env, network }) + "\\n");
process.exit(Number(process.env.${exit} ?? 0));
`;
const stands = [["failback-client", "CLIENT_EXIT"], ["networkctl", "NETWORKCTL_EXIT"], ["systemctl", "SYSTEMCTL_EXIT"], ["eject", "EJECT_EXIT"], ["sync", "SYNC_EXIT"]] as const;
for (const [name, exit] of stands) {
  writeFileSync(join(dir, name), recorder(name, exit));
  chmodSync(join(dir, name), 0o755);
}
// `ip` logs its arguments to ip.log and shows the interface's addresses and the default routes as
// the test sets them (IP_ADDR, IP_ROUTE: `ip -o` lines); it never changes, whatever networkctl does.
writeFileSync(
  join(dir, "ip"),
  `#!/bin/sh\necho "$*" >>${join(dir, "ip.log")}\ncase "$*" in\n  "-4 -o addr show"*) printf '%s' "$IP_ADDR" ;;\n  "-4 route show default") printf '%s' "$IP_ROUTE" ;;\nesac\n`,
);
chmodSync(join(dir, "ip"), 0o755);
// On PATH before the others, a `sleep` that returns at once: start.sh's wait for a setup that never
// shows ends without the 15 s.
const NO_WAIT = join(dir, "no-wait");
mkdirSync(NO_WAIT);
writeFileSync(join(NO_WAIT, "sleep"), "#!/bin/sh\nexit 0\n");
chmodSync(join(NO_WAIT, "sleep"), 0o755);

// A machine's network interfaces as /sys/class/net shows them: eth0 without a link, eth1 with one.
const SYS_NET = join(dir, "sys-class-net");
for (const [name, carrier] of [["lo", null], ["eth0", "0"], ["eth1", "1"]] as const) {
  mkdirSync(join(SYS_NET, name), { recursive: true });
  if (carrier !== null) {
    mkdirSync(join(SYS_NET, name, "device"));
    writeFileSync(join(SYS_NET, name, "carrier"), `${carrier}\n`);
  }
}

// A static address, and eth1 as an earlier run of start.sh left it with that address: 10.0.0.20/24
// and the default route via 10.0.0.1, as `ip` shows them, and the networkd file it wrote.
const good = { CONFIG_NETWORK: "1", IPADDR: "10.0.0.20", NETMASK: "255.255.255.0", GATEWAY: "10.0.0.1", DNS: "10.0.0.2" };
const earlierIp = {
  IP_ADDR: "2: eth1    inet 10.0.0.20/24 brd 10.0.0.255 scope global eth1\\       valid_lft forever preferred_lft forever\n",
  IP_ROUTE: "default via 10.0.0.1 dev eth1 proto static\n",
};
const working = "[Match]\nName=eth1\n\n[Network]\nDHCP=no\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nAddress=10.0.0.20/24\nGateway=10.0.0.1\nDNS=10.0.0.2\n";

interface Call {
  name: string;
  args: string[];
  env: Record<string, string>;
  network: string | null;
}

// network: the networkd file an earlier run of start.sh left; previous: the copy beside it.
function startSh(options: { cmdline?: string; env?: Record<string, string>; args?: string[]; network?: string; previous?: string } = {}) {
  for (const file of ["calls.log", "ip.log", "sysrq-trigger", "10-failback-static.network", "10-failback-static.network.previous"]) rmSync(join(dir, file), { force: true });
  if (options.network !== undefined) writeFileSync(NETWORK_FILE, options.network);
  if (options.previous !== undefined) writeFileSync(`${NETWORK_FILE}.previous`, options.previous);
  writeFileSync(join(dir, "cmdline"), options.cmdline ?? "BOOT_IMAGE=/live/vmlinuz boot=live components quiet");
  const result = spawnSync("bash", [START_SH, ...(options.args ?? [])], {
    env: {
      PATH: `${dir}:/usr/sbin:/usr/bin:/sbin:/bin`,
      FAILBACK_CMDLINE: join(dir, "cmdline"),
      FAILBACK_NETWORK_FILE: NETWORK_FILE,
      FAILBACK_SYS_NET: SYS_NET,
      FAILBACK_SYSRQ: join(dir, "sysrq-trigger"),
      FAILBACK_BOOT_MEDIUM: "/dev/sdz",
      DHCP_WAIT: "0",
      ON_SUCCESS: "shell",
      ...options.env,
    },
    encoding: "utf8",
    timeout: 20_000,
  });
  const calls: Call[] = existsSync(join(dir, "calls.log"))
    ? readFileSync(join(dir, "calls.log"), "utf8").trim().split("\n").map((line) => JSON.parse(line) as Call)
    : [];
  const sysrq = existsSync(join(dir, "sysrq-trigger")) ? readFileSync(join(dir, "sysrq-trigger"), "utf8") : null;
  const ip = existsSync(join(dir, "ip.log")) ? readFileSync(join(dir, "ip.log"), "utf8").trim().split("\n") : [];
  const network = existsSync(NETWORK_FILE) ? readFileSync(NETWORK_FILE, "utf8") : null;
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, calls, client: calls.find((c) => c.name === "failback-client"), sysrq, ip, network };
}

describe("start.sh: the DRS variables become the client's flags", () => {
  it("reads them from the kernel command line, quotes grouping blanks as the kernel does", () => {
    const run = startSh({
      cmdline:
        'BOOT_IMAGE=/live/vmlinuz boot=live AWS_REGION=eu-west-2 RECOVERY_INSTANCE_ID=i-0123456789abcdef0 NO_PROMPT=1 ' +
        'DEVICE_MAPPING=/dev/xvda=/dev/sda,/dev/xvdb=EXCLUDE AWS_DRS_ENDPOINT=vpce-1.drs.eu-west-2.vpce.amazonaws.com ' +
        'AWS_ACCESS_KEY=AKIAEXAMPLE AWS_SECRET_KEY=cmdline-secret-Xy7 "FAILBACK_ARGS=--once --agent-address 10.0.0.9"',
    });
    expect(run.code).toBe(0);
    expect(run.client?.args).toEqual([
      "--region", "eu-west-2",
      "--endpoint", "vpce-1.drs.eu-west-2.vpce.amazonaws.com",
      "--recovery-instance-id", "i-0123456789abcdef0",
      "--device-mapping", "/dev/xvda=/dev/sda,/dev/xvdb=EXCLUDE",
      "--no-prompt",
      "--once", "--agent-address", "10.0.0.9",
    ]);
    // Keys travel in the SDK's environment variables, never as arguments anyone can list.
    expect(run.client?.env).toMatchObject({ AWS_ACCESS_KEY_ID: "AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY: "cmdline-secret-Xy7" });
    expect(run.client?.env).not.toHaveProperty("AWS_SECRET_KEY");
    expect(run.client?.args.join(" ")).not.toContain("cmdline-secret-Xy7");
  });

  it("takes the last of the same name on the kernel command line, as the kernel and systemd do", () => {
    const run = startSh({ cmdline: "boot=live ON_SUCCESS=poweroff AWS_REGION=eu-west-2 ON_SUCCESS=shell AWS_REGION=eu-west-1", env: { ON_SUCCESS: undefined as unknown as string } });
    expect(run.calls.map((c) => [c.name, ...c.args])).toEqual([["failback-client", "--region", "eu-west-1"]]);
    // The environment still wins over every one of them.
    const env = startSh({ cmdline: "boot=live AWS_REGION=eu-west-2 AWS_REGION=eu-west-1", env: { AWS_REGION: "us-east-1" } });
    expect(env.client?.args).toEqual(["--region", "us-east-1"]);
  });

  it("removes only the quotes the kernel removes: a JSON DEVICE_MAPPING keeps its own", () => {
    const json = '{"/dev/xvda":"/dev/sda","/dev/xvdb":"EXCLUDE"}';
    const run = startSh({ cmdline: `boot=live DEVICE_MAPPING=${json} "FAILBACK_ARGS=--once --json" DM_VALUE_FORMAT="by-path"` });
    expect(run.client?.args).toEqual(["--dm-value-format", "by-path", "--device-mapping", json, "--once", "--json"]);
  });

  it("takes the environment over the command line, an empty AWS_DRS_ENDPOINT as the default endpoint, and passes its own arguments on", () => {
    const run = startSh({
      cmdline: "boot=live AWS_REGION=eu-west-2 RECOVERY_INSTANCE_ID=i-0aaaaaaaaaaaaaaaa",
      env: { AWS_REGION: "us-east-1", AWS_DRS_ENDPOINT: "", AWS_SESSION_TOKEN: "tok-1", AWS_STS_ENDPOINT: "https://sts.example", PROXY: "http://proxy:3128" },
      args: ["--dm-value-format", "by-path", "--no-reboot"],
    });
    expect(run.code).toBe(0);
    expect(run.client?.args).toEqual(["--region", "us-east-1", "--default-endpoint", "--recovery-instance-id", "i-0aaaaaaaaaaaaaaaa", "--dm-value-format", "by-path"]);
    expect(run.client?.env).toMatchObject({ AWS_SESSION_TOKEN: "tok-1", AWS_ENDPOINT_URL_STS: "https://sts.example", HTTPS_PROXY: "http://proxy:3128" });
  });

  it("returns the client's exit code when run by hand, with a line saying so", () => {
    const run = startSh({ env: { CLIENT_EXIT: "6", ON_FAILURE: "shell" } });
    expect(run.code).toBe(6);
    expect(run.stdout).toContain("failback-client exited with code 6");
    expect(run.calls.map((c) => c.name)).toEqual(["failback-client"]);
  });

  it("powers off or reboots after success only when asked to", () => {
    expect(startSh({ env: { ON_SUCCESS: "poweroff" } }).calls.map((c) => [c.name, ...c.args])).toEqual([["failback-client"], ["systemctl", "poweroff"]]);
    expect(startSh({ env: { ON_SUCCESS: "shell" } }).calls.map((c) => c.name)).toEqual(["failback-client"]);
  });

  it("by default, ejects the CD and reboots into the restored system when nobody presses Enter", () => {
    const run = startSh({ env: { ON_SUCCESS: "", FAILBACK_BOOT_MEDIUM: "/dev/sr7" } });
    expect(run.stdout).toContain("Rebooting into the restored system in 10 s");
    expect(run.calls.map((c) => [c.name, ...c.args])).toEqual([["failback-client"], ["sync"], ["eject", "--no-unmount", "--scsi", "/dev/sr7"], ["systemctl", "reboot"]]);
    // Nothing can be read from the ISO after the eject: the kernel reboots through sysrq.
    expect(run.sysrq).toBe("b\n");
  });

  it("booted from a USB stick, asks for it to be removed and reboots without ejecting", () => {
    const run = startSh({ env: { ON_SUCCESS: "reboot", FAILBACK_BOOT_MEDIUM: "/dev/sdz" } });
    expect(run.stdout).toContain("Remove the USB stick (/dev/sdz)");
    expect(run.calls.map((c) => [c.name, ...c.args])).toEqual([["failback-client"], ["sync"], ["systemctl", "reboot"]]);
    expect(run.sysrq).toBeNull();
  });

  it("after a failure, ON_FAILURE=reboot boots the ISO again: no eject, no talk of a restored system", () => {
    const run = startSh({ env: { ON_FAILURE: "reboot", CLIENT_EXIT: "6", FAILBACK_BOOT_MEDIUM: "/dev/sr7" } });
    expect(run.code).toBe(6);
    expect(run.stdout).not.toContain("restored system");
    expect(run.calls.map((c) => [c.name, ...c.args])).toEqual([["failback-client"], ["systemctl", "reboot"]]);
    expect(run.sysrq).toBeNull();
  });

  it("ends with a shell after --help, -h, --version and --list-devices: nothing was restored to boot into", () => {
    for (const arg of ["--list-devices", "--help", "-h", "--version"]) {
      const run = startSh({ env: { ON_SUCCESS: "", FAILBACK_BOOT_MEDIUM: "/dev/sr7" }, args: [arg] });
      expect(run.code, arg).toBe(0);
      expect(run.calls.map((c) => [c.name, ...c.args]), arg).toEqual([["failback-client", arg]]);
      expect(run.sysrq, arg).toBeNull();
      const failed = startSh({ env: { ON_FAILURE: "reboot", CLIENT_EXIT: "1" }, args: [arg] });
      expect(failed.calls.map((c) => c.name), arg).toEqual(["failback-client"]);
    }
  });

  it("passes FAILBACK_ARGS on whole, newlines too, and takes --no-reboot in it as its own", () => {
    expect(startSh({ env: { FAILBACK_ARGS: "--once\n--agent-address 10.0.0.9" } }).client?.args).toEqual(["--once", "--agent-address", "10.0.0.9"]);
    const run = startSh({ env: { FAILBACK_ARGS: "--no-reboot --once", ON_SUCCESS: "reboot" } });
    expect(run.calls.map((c) => [c.name, ...c.args])).toEqual([["failback-client", "--once"]]);
  });

  it("takes NO_PROMPT and CONFIG_NETWORK as 1, yes, true or 0, no, false, off, and refuses anything else", () => {
    expect(startSh({ env: { NO_PROMPT: "off" } }).client?.args).toEqual([]);
    expect(startSh({ env: { NO_PROMPT: "True" } }).client?.args).toEqual(["--no-prompt"]);
    expect(startSh({ env: { CONFIG_NETWORK: "off" } }).calls.map((c) => c.name)).toEqual(["failback-client"]);
    for (const [name, value] of [["CONFIG_NETWORK", "on"], ["NO_PROMPT", "y"]] as const) {
      const run = startSh({ env: { [name]: value } });
      expect(run.code).toBe(2);
      expect(run.stderr).toBe(`start.sh: ${name}="${value}" is not 1, yes, true or 0, no, false, off\n`);
      expect(run.calls).toEqual([]);
    }
  });

  it("warns when a static address is given without CONFIG_NETWORK=1, and goes on", () => {
    const run = startSh({ env: { IPADDR: "10.0.0.20", NETMASK: "24", GATEWAY: "10.0.0.1" } });
    expect(run.stderr).toBe("start.sh: IPADDR NETMASK GATEWAY set without CONFIG_NETWORK=1: ignored, the address comes from DHCP\n");
    expect(run.calls.map((c) => c.name)).toEqual(["failback-client"]);
  });

  it("applies KEYMAP only once every value is checked", () => {
    const keys = join(dir, "keys");
    mkdirSync(keys, { recursive: true });
    for (const name of ["sed", "setupcon"]) {
      writeFileSync(join(keys, name), `#!/bin/sh\necho ${name} >>${join(keys, "calls")}\n`);
      chmodSync(join(keys, name), 0o755);
    }
    const env = { PATH: `${keys}:${dir}:/usr/sbin:/usr/bin:/sbin:/bin`, KEYMAP: "de" };
    const refused = startSh({ env: { ...env, CONFIG_NETWORK: "1", IPADDR: "10.0.0.300", NETMASK: "24" } });
    expect(refused.code).toBe(2);
    expect(existsSync(join(keys, "calls"))).toBe(false);
    expect(startSh({ env }).code).toBe(0);
    expect(readFileSync(join(keys, "calls"), "utf8")).toBe("sed\nsetupcon\n");
  });

  it("passes FAILBACK_ARGS on word by word, never expanding file patterns", () => {
    const run = startSh({ env: { FAILBACK_ARGS: "--agent-address [fd00::1]:1500 --log-file /tmp/*" } });
    expect(run.client?.args).toEqual(["--agent-address", "[fd00::1]:1500", "--log-file", "/tmp/*"]);
  });
});

describe("start.sh: a static address (CONFIG_NETWORK=1)", () => {
  const refused: [Record<string, string>, string][] = [
    [{ IPADDR: "10.0.0.300" }, 'IPADDR="10.0.0.300" is not an IPv4 address'],
    [{ IPADDR: "" }, "CONFIG_NETWORK=1 needs IPADDR"],
    [{ NETMASK: "255.0.255.0" }, 'NETMASK="255.0.255.0" is not a network mask'],
    [{ NETMASK: "33" }, 'NETMASK="33" is not a network mask'],
    [{ GATEWAY: "10.0.1.1" }, 'GATEWAY="10.0.1.1" is not in 10.0.0.20/24\'s network'],
    [{ GATEWAY: "10.0.0.20" }, "is this machine's own IPADDR"],
    [{ DNS: "10.0.0.2,dns.example" }, '"dns.example" is not an IPv4 address'],
    [{ IFACE: "nosuch0" }, 'IFACE="nosuch0" is not a network interface here'],
    [{ IFACE: "../lo" }, 'IFACE="../lo" is not a network interface here'],
    [{ IPADDR: "010.0.0.20" }, 'IPADDR="010.0.0.20" is not an IPv4 address'],
    [{ IPADDR: "10.0.0.0" }, 'IPADDR="10.0.0.0" is the network\'s own address for /24'],
    [{ IPADDR: "10.0.0.255" }, 'IPADDR="10.0.0.255" is the broadcast address for /24'],
    [{ NETMASK: "0" }, 'NETMASK="0" leaves no room for a gateway'],
    [{ ON_SUCCESS: "halt" }, 'ON_SUCCESS="halt" is not one of reboot, poweroff, shell'],
    [{ DHCP_WAIT: "soon" }, 'DHCP_WAIT="soon" is not a number of seconds'],
  ];
  it("refuses a bad value without powering off or rebooting, whatever ON_FAILURE says (no reboot loop)", () => {
    const poweroff = startSh({ env: { ...good, IPADDR: "10.0.0.300", ON_FAILURE: "poweroff" } });
    expect(poweroff.code).toBe(2);
    expect(poweroff.calls).toEqual([]);
    const seedTypo = startSh({ cmdline: "boot=live IPADDR=10.0.0.20 NETMASK=24 GATEWAY=10.0.9.1 CONFIG_NETWORK=1 ON_FAILURE=reboot" });
    expect(seedTypo.code).toBe(2);
    expect(seedTypo.stderr.trim().split("\n")).toEqual([expect.stringContaining('GATEWAY="10.0.9.1" is not in')]);
    expect(seedTypo.calls).toEqual([]);
    expect(startSh({ env: { ON_SUCCESS: "halt", ON_FAILURE: "reboot" } }).calls).toEqual([]);
  });

  for (const [bad, message] of refused) {
    it(`refuses ${JSON.stringify(bad)} with one line, exit 2, changing nothing`, () => {
      const run = startSh({ env: { ...good, ...bad } });
      expect(run.code).toBe(2);
      expect(run.stderr.trim().split("\n")).toEqual([expect.stringContaining(message)]);
      expect(run.stderr).toMatch(/^start\.sh: /);
      expect(run.calls).toEqual([]); // neither networkctl nor the client ran
    });
  }

  it("writes the whole configuration before asking networkd, and goes back to DHCP if networkd cannot apply it", () => {
    // DNS is optional; the interface is the first wired one with a link. networkd refuses here, so
    // the roll-back runs.
    // start.sh says so itself and exits 7, its own code: the client never ran, so ON_FAILURE
    // (about the failback) does not apply.
    const run = startSh({ env: { CONFIG_NETWORK: "1", IPADDR: "10.0.0.20", NETMASK: "24", GATEWAY: "10.0.0.1", NETWORKCTL_EXIT: "1", ON_FAILURE: "reboot" } });
    expect(run.code).toBe(7);
    expect(run.stderr.trim().split("\n")).toEqual([
      "start.sh: CONFIG_NETWORK=1 without DNS: no names resolve, the AWS endpoints' neither",
      "start.sh: eth1 did not take 10.0.0.20/24 via 10.0.0.1: networkctl reload failed; networkctl failed again, putting it back on DHCP (journalctl -u systemd-networkd says why)",
    ]);
    expect(run.stdout).not.toContain("failback-client exited");
    expect(run.calls.filter((c) => c.name !== "networkctl")).toEqual([]); // no client, no reboot
    const [reload] = run.calls;
    expect(reload).toMatchObject({ name: "networkctl", args: ["reload"] });
    expect(reload?.network).toBe("[Match]\nName=eth1\n\n[Network]\nDHCP=no\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nAddress=10.0.0.20/24\nGateway=10.0.0.1\n");
    expect(run.calls.at(-1)).toMatchObject({ name: "networkctl", network: null }); // the file is gone again
    expect(run.client).toBeUndefined();
  });

  const earlier = { ...earlierIp, PATH: `${NO_WAIT}:${dir}:/usr/sbin:/usr/bin:/sbin:/bin` };

  it("says the static address is in place once its address and its default route show", () => {
    const run = startSh({ env: { ...good, ...earlier } });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("Network: eth1 10.0.0.20/24 via 10.0.0.1, DNS 10.0.0.2 (static)\n");
    expect(run.calls.map((c) => [c.name, ...c.args])).toEqual([["networkctl", "reload"], ["networkctl", "reconfigure", "eth1"], ["failback-client"]]);
    expect(run.ip).toEqual(["-4 -o addr show dev eth1", "-4 route show default"]);
  });

  // The wait for the new setup to show lasts up to 15 s: without a word, it looks like a hang.
  it("says what it applies, and that it waits for it, before the wait", () => {
    const applying = "Network: applying 10.0.0.20/24 via 10.0.0.254, DNS 10.0.0.2 on eth1 (waiting up to 15 s)...\n";
    const failed = startSh({ env: { ...good, ...earlier, GATEWAY: "10.0.0.254" } });
    expect(failed.code).toBe(7);
    expect(failed.stdout).toBe(applying);
    const run = startSh({ env: { ...good, ...earlier } });
    expect(run.stdout).toBe(`${applying.replace("10.0.0.254", "10.0.0.1")}Network: eth1 10.0.0.20/24 via 10.0.0.1, DNS 10.0.0.2 (static)\n`);
  });

  // The address alone proved nothing: a re-run with the same IPADDR found it there and went on,
  // "Network: ... (static)", though networkd had taken none of the new settings.
  const notTaken: [string, Record<string, string>, string, string][] = [
    ["networkd fails while the address is already there", { GATEWAY: "10.0.0.254", NETWORKCTL_EXIT: "1" }, "10.0.0.20/24 via 10.0.0.254, DNS 10.0.0.2", "networkctl reload failed; networkctl failed again, putting it back on DHCP"],
    ["the new GATEWAY's route never shows, the old one stays", { GATEWAY: "10.0.0.254" }, "10.0.0.20/24 via 10.0.0.254, DNS 10.0.0.2", "no default route via 10.0.0.254 on eth1; it is back on DHCP"],
    ["the address keeps its earlier mask", { NETMASK: "255.255.0.0" }, "10.0.0.20/16 via 10.0.0.1, DNS 10.0.0.2", "10.0.0.20/16 is not on eth1; it is back on DHCP"],
  ];
  for (const [scenario, change, setup, why] of notTaken) {
    it(`is no false success on a re-run when ${scenario}: exit 7, naming what did not take`, () => {
      const run = startSh({ env: { ...good, ...earlier, ON_FAILURE: "reboot", ...change } });
      expect(run.code).toBe(7);
      expect(run.stderr).toBe(`start.sh: eth1 did not take ${setup}: ${why} (journalctl -u systemd-networkd says why)\n`);
      expect(run.stdout).not.toContain("(static)");
      expect(run.calls.filter((c) => c.name !== "networkctl")).toEqual([]); // no client, no reboot
    });
  }

  // An earlier run's working file. A failed re-run used to delete it, "back on DHCP": at a site
  // with static addresses only, no network at all.
  const putBack: [string, Record<string, string>, string, string[]][] = [
    [
      "a new GATEWAY's route never shows",
      { GATEWAY: "10.0.0.254" },
      "eth1 did not take 10.0.0.20/24 via 10.0.0.254, DNS 10.0.0.2: no default route via 10.0.0.254 on eth1; it is back on its previous static setup, 10.0.0.20/24 via 10.0.0.1",
      ["reconfigure", "eth1"],
    ],
    [
      "networkd fails, and again putting the earlier file back",
      { GATEWAY: "10.0.0.254", NETWORKCTL_EXIT: "1" },
      "eth1 did not take 10.0.0.20/24 via 10.0.0.254, DNS 10.0.0.2: networkctl reload failed; networkctl failed again, putting it back on its previous static setup, 10.0.0.20/24 via 10.0.0.1",
      ["reload"],
    ],
    [
      "IFACE names another interface than the earlier run's",
      { IFACE: "eth0", IP_ADDR: "" },
      "eth0 did not take 10.0.0.20/24 via 10.0.0.1, DNS 10.0.0.2: 10.0.0.20/24 is not on eth0; it is back on DHCP, and eth1 on its previous static setup, 10.0.0.20/24 via 10.0.0.1",
      ["reconfigure", "eth0", "eth1"],
    ],
  ];
  for (const [scenario, change, message, last] of putBack) {
    it(`keeps an earlier run's working setup when a re-run's does not take (${scenario}), and says what is back`, () => {
      const run = startSh({ network: working, env: { ...good, ...earlier, ...change } });
      expect(run.code).toBe(7);
      expect(run.calls[0]?.network).not.toBe(working); // the new file was tried
      expect(run.network).toBe(working);
      expect(run.calls.at(-1)).toMatchObject({ name: "networkctl", args: last, network: working });
      expect(existsSync(`${NETWORK_FILE}.previous`)).toBe(false);
      expect(run.stderr).toBe(`start.sh: ${message} (journalctl -u systemd-networkd says why)\n`);
      expect(run.client).toBeUndefined();
    });
  }

  // A run killed outright while it waited (SIGKILL: no trap runs) leaves its unchecked file in
  // place, and beside it, as .previous, the setup before it: an earlier run's working file, or an
  // empty one for none (DHCP). A re-run used to delete that copy, and then put the killed run's
  // unchecked file back as "its previous static setup".
  const unchecked = working.replace("Gateway=10.0.0.1", "Gateway=10.0.0.254");
  const leftovers: [string, string, string | null, string][] = [
    ["an earlier run's working file", working, working, "its previous static setup, 10.0.0.20/24 via 10.0.0.1"],
    ["none, DHCP", "", null, "DHCP"],
  ];
  for (const [scenario, previous, after, before] of leftovers) {
    it(`starts from the setup a killed run kept (${scenario}), never from that run's unchecked file`, () => {
      const run = startSh({ network: unchecked, previous, env: { ...good, ...earlier, GATEWAY: "10.0.0.253" } });
      expect(run.code).toBe(7);
      expect(run.stderr).toBe(`start.sh: eth1 did not take 10.0.0.20/24 via 10.0.0.253, DNS 10.0.0.2: no default route via 10.0.0.253 on eth1; it is back on ${before} (journalctl -u systemd-networkd says why)\n`);
      expect(run.network).toBe(after);
      expect(run.calls.at(-1)).toMatchObject({ name: "networkctl", args: ["reconfigure", "eth1"], network: after });
      expect(existsSync(`${NETWORK_FILE}.previous`)).toBe(false);
      // Once a re-run's setup takes, nothing of the killed run is left.
      const taken = startSh({ network: unchecked, previous, env: { ...good, ...earlier } });
      expect(taken.code).toBe(0);
      expect(taken.network).toBe(working);
      expect(existsSync(`${NETWORK_FILE}.previous`)).toBe(false);
    });
  }

  // SIGTERM while start.sh waits for the new setup (systemd stopping the console, a kill): `sleep`
  // sends it, to start.sh, so it comes inside the wait.
  const terminating = join(dir, "terminating");
  mkdirSync(terminating);
  writeFileSync(join(terminating, "sleep"), "#!/bin/sh\nkill -TERM $PPID\n");
  chmodSync(join(terminating, "sleep"), 0o755);
  const terminated: [string, string | undefined, string | null, string][] = [
    ["an earlier run's working setup", working, working, "its previous static setup, 10.0.0.20/24 via 10.0.0.1"],
    ["DHCP", undefined, null, "DHCP"],
  ];
  for (const [scenario, network, after, before] of terminated) {
    it(`puts back what the interface had (${scenario}) when SIGTERM stops the wait, and exits 130`, () => {
      const run = startSh({ network, env: { ...good, ...earlier, GATEWAY: "10.0.0.254", ON_FAILURE: "reboot", PATH: `${terminating}:${dir}:/usr/sbin:/usr/bin:/sbin:/bin` } });
      expect(run.code).toBe(130);
      expect(run.stderr).toBe(`start.sh: cancelled before eth1 took 10.0.0.20/24 via 10.0.0.254, DNS 10.0.0.2; it is back on ${before}\n`);
      expect(run.network).toBe(after);
      expect(run.calls.at(-1)).toMatchObject({ name: "networkctl", args: ["reconfigure", "eth1"], network: after });
      expect(existsSync(`${NETWORK_FILE}.previous`)).toBe(false);
      expect(run.calls.filter((c) => c.name !== "networkctl")).toEqual([]); // no client, no reboot
    });
  }

  it("replaces an earlier run's file when the new setup takes, keeping no copy", () => {
    const run = startSh({ network: working, env: { ...good, ...earlier, DNS: "10.0.0.3" } });
    expect(run.code).toBe(0);
    expect(run.network).toBe(working.replace("DNS=10.0.0.2", "DNS=10.0.0.3"));
    expect(existsSync(`${NETWORK_FILE}.previous`)).toBe(false);
  });

  it("lists every DNS server, commas or blanks between them", () => {
    const run = startSh({ env: { ...good, IFACE: "eth0", DNS: "10.0.0.2, 10.0.0.3", NETWORKCTL_EXIT: "1" } });
    expect(run.calls[0]?.network).toContain("Name=eth0\n");
    expect(run.calls[0]?.network).toContain("DNS=10.0.0.2\nDNS=10.0.0.3\n");
  });

  it("reads the static address from the kernel command line too", () => {
    const run = startSh({ cmdline: "boot=live IPADDR=10.0.0.20 NETMASK=255.255.255.0 GATEWAY=10.0.9.1 CONFIG_NETWORK=1" });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('GATEWAY="10.0.9.1" is not in 10.0.0.20/24\'s network');
  });
});

describe("console-launch: whatever way start.sh ends, the console is left with a shell", () => {
  // console-launch's last line, run on a pseudo-terminal as its controlling terminal, with start.sh
  // and the login shell swapped for this machine's: Ctrl-C reaches the whole foreground group.
  const launch = readFileSync(resolve("iso-build/overlay/usr/lib/failback/console-launch"), "utf8");
  const list = /^exec setsid --ctty --wait \/bin\/bash -c '([^']*)'$/m.exec(launch)?.[1] ?? "";
  const consoleDir = join(dir, "console");
  mkdirSync(consoleDir, { recursive: true });
  // `ip` with no address and no default route: a network where DHCP never answers.
  writeFileSync(join(consoleDir, "ip"), "#!/bin/sh\nexit 0\n");
  chmodSync(join(consoleDir, "ip"), 0o755);
  // Not named pty.py: a script's own folder comes first on Python's module path.
  const pressKeys = join(consoleDir, "press-keys.py");
  writeFileSync(
    pressKeys,
    [
      "import os, pty, select, sys, time",
      "when, script, key = sys.argv[1], sys.argv[2], sys.argv[3].encode()",
      "text = None if when.replace('.', '', 1).isdigit() else when.encode()",
      "pid, fd = pty.fork()",
      "if pid == 0: os.execv('/usr/bin/setsid', ['setsid', '--ctty', '--wait', '/bin/bash', '-c', script])",
      "out, start, sent = b'', time.time(), False",
      "while time.time() - start < 15:",
      "    due = text in out if text else time.time() - start >= float(when)",
      "    if not sent and due: os.write(fd, key); sent = True",
      "    if select.select([fd], [], [], 0.1)[0]:",
      "        try: data = os.read(fd, 4096)",
      "        except OSError: break",
      "        if not data: break",
      "        out += data",
      "os.waitpid(pid, 0)",
      "sys.stdout.write(out.decode(errors='replace'))",
    ].join("\n"),
  );

  function pressCtrlC(delay: number, env: Record<string, string>, path = consoleDir) {
    return pressKey("\x03", delay, env, path);
  }

  // when: seconds after the start, or a text to wait for on the screen.
  function pressKey(key: string, when: number | string, env: Record<string, string>, path: string) {
    expect(list).toContain("/usr/bin/start.sh; cat /etc/motd; exec /bin/bash -l");
    const script = list.replace("/usr/bin/start.sh", `bash ${START_SH}`).replace("cat /etc/motd", "echo MOTD").replace("exec /bin/bash -l", "exec /bin/bash -c 'echo ROOT-SHELL'");
    const result = spawnSync("python3", [pressKeys, String(when), script, key], {
      env: {
        PATH: `${path}:${dir}:/usr/sbin:/usr/bin:/sbin:/bin`,
        FAILBACK_CMDLINE: join(dir, "cmdline"),
        FAILBACK_NETWORK_FILE: NETWORK_FILE,
        FAILBACK_SYS_NET: SYS_NET,
        FAILBACK_SYSRQ: join(dir, "sysrq-trigger"),
        FAILBACK_BOOT_MEDIUM: "/dev/sr7",
        TERM: "dumb",
        ...env,
      },
      encoding: "utf8",
      timeout: 30_000,
    });
    return result.stdout + result.stderr + String(result.error ?? "");
  }

  it("after Ctrl-C while start.sh waits for a DHCP address", () => {
    writeFileSync(join(dir, "cmdline"), "boot=live quiet");
    const screen = pressCtrlC(1.5, { DHCP_WAIT: "20" });
    expect(screen).toContain("MOTD");
    expect(screen).toContain("ROOT-SHELL");
  });

  // The wait for a static address may last 15 s, long enough to invite a Ctrl-C: it used to leave
  // networkd on the new, unchecked file, the working one only as .previous.
  it("after Ctrl-C while start.sh waits for a static address, back on the earlier run's working setup", () => {
    const waiting = join(consoleDir, "waiting");
    mkdirSync(waiting, { recursive: true });
    // The wait's `sleep`, which shows on the screen when it starts: Ctrl-C comes inside the wait.
    writeFileSync(join(waiting, "sleep"), '#!/bin/sh\necho "(in the wait)" >&2\nexec /bin/sleep "$@"\n');
    chmodSync(join(waiting, "sleep"), 0o755);
    for (const file of ["calls.log", "10-failback-static.network.previous"]) rmSync(join(dir, file), { force: true });
    writeFileSync(NETWORK_FILE, working);
    writeFileSync(join(dir, "cmdline"), "boot=live quiet");
    // consoleDir's `ip` shows no address: the new setup never shows.
    const screen = pressKey("\x03", "(in the wait)", { ...good, GATEWAY: "10.0.0.254", ON_FAILURE: "reboot" }, `${waiting}:${consoleDir}`);
    expect(readFileSync(NETWORK_FILE, "utf8")).toBe(working);
    expect(existsSync(`${NETWORK_FILE}.previous`)).toBe(false);
    const calls = readFileSync(join(dir, "calls.log"), "utf8").trim().split("\n").map((line) => JSON.parse(line) as Call);
    expect(calls.at(-1)).toMatchObject({ name: "networkctl", args: ["reconfigure", "eth1"], network: working });
    expect(calls.filter((c) => c.name !== "networkctl")).toEqual([]); // no client, no reboot
    const cancelled = "start.sh: cancelled before eth1 took 10.0.0.20/24 via 10.0.0.254, DNS 10.0.0.2; it is back on its previous static setup, 10.0.0.20/24 via 10.0.0.1";
    expect(screen).toContain(cancelled);
    expect(screen.indexOf("Network: applying 10.0.0.20/24 via 10.0.0.254")).toBeLessThan(screen.indexOf(cancelled));
    expect(screen).toContain("MOTD");
    expect(screen).toContain("ROOT-SHELL");
  });

  // The put-back is for the wait only: a Ctrl-C that stops the client, once the new setup took,
  // must leave it in place.
  it("after Ctrl-C stops the client once a static address took, which stays", () => {
    const client = join(consoleDir, "static-client");
    mkdirSync(client, { recursive: true });
    writeFileSync(join(client, "failback-client"), '#!/bin/sh\necho "(client running)"\nexec /bin/sleep 5\n');
    chmodSync(join(client, "failback-client"), 0o755);
    for (const file of ["calls.log", "10-failback-static.network.previous"]) rmSync(join(dir, file), { force: true });
    writeFileSync(NETWORK_FILE, working);
    writeFileSync(join(dir, "cmdline"), "boot=live quiet");
    // Without consoleDir: `ip` shows the earlier run's address and route, so a new DNS takes at once.
    const screen = pressKey("\x03", "(client running)", { ...good, ...earlierIp, DNS: "10.0.0.3" }, client);
    expect(screen).toContain("Network: eth1 10.0.0.20/24 via 10.0.0.1, DNS 10.0.0.3 (static)");
    // start.sh ends on the Ctrl-C as it did before there was a put-back: without a word of its own.
    expect(screen.slice(screen.indexOf("(client running)"))).not.toContain("start.sh");
    expect(screen).toContain("ROOT-SHELL");
    expect(readFileSync(NETWORK_FILE, "utf8")).toBe(working.replace("DNS=10.0.0.2", "DNS=10.0.0.3"));
    expect(existsSync(`${NETWORK_FILE}.previous`)).toBe(false);
  });

  it("after Ctrl-C during the countdown to the reboot into the restored system", () => {
    const screen = pressCtrlC(2, { DHCP_WAIT: "0", ON_SUCCESS: "reboot", CLIENT_EXIT: "0" });
    expect(screen).toContain("Rebooting into the restored system in 10 s");
    expect(screen).toContain("ROOT-SHELL");
    expect(existsSync(join(dir, "sysrq-trigger"))).toBe(false);
  });

  it("after Ctrl-C stops the client, which still gets the signal (not ignored)", () => {
    const sleeper = join(consoleDir, "sleeper");
    mkdirSync(sleeper, { recursive: true });
    // A client that ignored the signal would sleep on, leave its mark, and exit by itself.
    const mark = join(sleeper, "slept");
    rmSync(mark, { force: true });
    writeFileSync(join(sleeper, "failback-client"), `#!/bin/sh\nsleep 5\ntouch ${mark}\n`);
    chmodSync(join(sleeper, "failback-client"), 0o755);
    // start.sh, waiting for the client in the same foreground group, leaves with it.
    const screen = pressCtrlC(1.5, { DHCP_WAIT: "0" }, `${sleeper}:${consoleDir}`);
    expect(screen).toContain("ROOT-SHELL");
    expect(existsSync(mark)).toBe(false);
  });

  it("reboots after the countdown though Enter was pressed while the client ran (typed ahead)", () => {
    // The client, still running when the Enter reaches the console (an extra one at a prompt, or
    // during the progress): it ends only once the line waits, unread, in the terminal's queue.
    const typing = join(consoleDir, "typing");
    mkdirSync(typing, { recursive: true });
    writeFileSync(
      join(typing, "failback-client"),
      [
        "#!/usr/bin/env python3",
        "import fcntl, struct, termios, time",
        "for _ in range(200):",
        "    if struct.unpack('i', fcntl.ioctl(0, termios.FIONREAD, b'\\0' * 4))[0]: break",
        "    time.sleep(0.05)",
      ].join("\n"),
    );
    chmodSync(join(typing, "failback-client"), 0o755);
    for (const file of ["calls.log", "sysrq-trigger"]) rmSync(join(dir, file), { force: true });
    const screen = pressKey("\r", 0, { DHCP_WAIT: "0", ON_SUCCESS: "reboot" }, `${typing}:${consoleDir}`);
    expect(screen).toContain("Rebooting into the restored system in 10 s");
    // Only an Enter pressed once the countdown asks for it gives the shell instead.
    const sysrq = existsSync(join(dir, "sysrq-trigger")) ? readFileSync(join(dir, "sysrq-trigger"), "utf8") : null;
    expect(sysrq).toBe("b\n");
    rmSync(join(dir, "sysrq-trigger"), { force: true });
  });

  it("gives the shell instead when Enter is pressed during the countdown", () => {
    rmSync(join(dir, "calls.log"), { force: true });
    const screen = pressKey("\r", "press Enter for a shell instead", { DHCP_WAIT: "0", ON_SUCCESS: "reboot" }, consoleDir);
    expect(screen).toContain("ROOT-SHELL");
    expect(readFileSync(join(dir, "calls.log"), "utf8")).not.toContain('"systemctl"');
    expect(existsSync(join(dir, "sysrq-trigger"))).toBe(false);
  });
});

describe("start.sh: secrets given as its arguments", () => {
  // The client as it runs: what ps shows for its parent, start.sh, meanwhile.
  const spy = join(dir, "spy");
  mkdirSync(spy, { recursive: true });
  writeFileSync(
    join(spy, "failback-client"),
    `#!/bin/sh\ntr '\\0' ' ' </proc/$PPID/cmdline >${join(spy, "parent")}\nenv | grep '^AWS_' | sort >${join(spy, "env")}\nprintf '%s\\n' "$@" >${join(spy, "args")}\n`,
  );
  chmodSync(join(spy, "failback-client"), 0o755);
  const env = { PATH: `${spy}:${dir}:/usr/sbin:/usr/bin:/sbin:/bin` };

  it("never stay in start.sh's command line: the keys reach the client in its environment", () => {
    const run = startSh({
      env,
      args: ["--once", "--aws-access-key-id", "AKIAEXAMPLE", "--aws-secret-access-key=S3CR3T-key-xyz", "--aws-session-token", "tok-Q9"],
    });
    expect(run.code).toBe(0);
    const parent = readFileSync(join(spy, "parent"), "utf8");
    expect(parent).toContain("start.sh --once");
    for (const secret of ["AKIAEXAMPLE", "S3CR3T-key-xyz", "tok-Q9"]) expect(parent).not.toContain(secret);
    expect(readFileSync(join(spy, "args"), "utf8")).toBe("--once\n");
    expect(readFileSync(join(spy, "env"), "utf8")).toBe("AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY=S3CR3T-key-xyz\nAWS_SESSION_TOKEN=tok-Q9\n");
  });

  it("refuses a pairing code, and a key id without its secret, with one line", () => {
    for (const [args, message] of [
      [["--pairing-code", "PAIR-1234"], 'give it in the environment instead: FAILBACK_ARGS="--pairing-code ..."'],
      [["--aws-access-key-id", "AKIAEXAMPLE"], "--aws-access-key-id was given without --aws-secret-access-key: give both"],
      [["--aws-session-token"], "--aws-session-token needs a value"],
    ] as const) {
      const run = startSh({ env, args: [...args] });
      expect(run.code, message).toBe(2);
      expect(run.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^start\.sh: /)]);
      expect(run.stderr).toContain(message);
      expect(run.calls).toEqual([]);
    }
  });
});
