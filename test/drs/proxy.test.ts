/*
 * DRS and STS requests through an HTTPS proxy (HTTPS_PROXY, as the live ISO's PROXY sets it): a real
 * CONNECT proxy on 127.0.0.1 in front of the emulator, which records the tunnels it opened.
 */
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { emulatorState } from "../../src/cli/demo/state.js";
import { checkCredentials, createClients, DrsError, listRecoveryInstances } from "../../src/drs/index.js";
import { parseState, startEmulator, type Emulator } from "../../src/emulator/index.js";
import { baseWorld } from "../integration/world.js";

const SECRET = "proxy-test-secret-4Gt7Hw2Qz9Lm5Xc8Vb1Nk3Jr6Ps0Df";
const PROXY_PASSWORD = "proxy-pass-Wd9Xq2";
const world = baseWorld({ secretAccessKey: SECRET, volumes: [{ deviceName: "/dev/xvda", bytes: 2 ** 20 }] });

let emulator: Emulator;
let proxy: Server;
let proxyUrl: string;
const tunnels: { target: string; auth: string | undefined }[] = [];
const open = new Set<Socket>();

beforeAll(async () => {
  emulator = await startEmulator({ state: parseState(emulatorState(world)) });
  proxy = createServer((_req, res) => res.writeHead(405).end());
  proxy.on("connect", (req, client, head) => {
    tunnels.push({ target: req.url ?? "", auth: req.headers["proxy-authorization"] });
    const [host, port] = (req.url ?? "").split(":");
    const upstream = connect(Number(port), host, () => {
      open.add(upstream).add(client as Socket);
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});
afterAll(async () => {
  // Tunnels are no longer HTTP connections, so the server cannot close them itself.
  for (const socket of open) socket.destroy();
  await new Promise((resolve) => proxy?.close(resolve));
  await emulator?.close();
});

const clientsWith = (env: NodeJS.ProcessEnv) =>
  createClients({
    region: world.region,
    endpoint: emulator.url,
    credentials: { accessKeyId: world.accessKeyId, secretAccessKey: SECRET },
    env: { AWS_ENDPOINT_URL_STS: emulator.url, ...env },
  });

describe("the control plane through an HTTPS proxy", () => {
  it("sends STS and DRS requests through the proxy's CONNECT tunnel, with its credentials", async () => {
    tunnels.length = 0;
    const withCredentials = proxyUrl.replace("http://", `http://failback:${PROXY_PASSWORD}@`);
    const clients = clientsWith({ HTTPS_PROXY: withCredentials });
    expect(await checkCredentials(clients)).toMatchObject({ account: world.account });
    expect((await listRecoveryInstances(clients)).map((i) => i.id)).toContain(world.recoveryInstanceId);
    const emulatorHost = new URL(emulator.url).host;
    expect(tunnels.length).toBeGreaterThan(0);
    expect(tunnels.every((t) => t.target === emulatorHost)).toBe(true);
    expect(tunnels[0]!.auth).toBe(`Basic ${Buffer.from(`failback:${PROXY_PASSWORD}`).toString("base64")}`);
    // Messages name the proxy, never its password.
    expect(clients.drsEndpoint).toBe(`${emulator.url} (through the proxy ${proxyUrl})`);
  });

  it("goes direct to the hosts NO_PROXY names", async () => {
    tunnels.length = 0;
    const clients = clientsWith({ HTTPS_PROXY: proxyUrl, NO_PROXY: "localhost,127.0.0.1" });
    expect(await checkCredentials(clients)).toMatchObject({ account: world.account });
    expect(tunnels).toEqual([]);
    expect(clients.drsEndpoint).toBe(emulator.url);
  });

  it("says so when the proxy wants credentials it was not given", async () => {
    const strict = createServer((_req, res) => res.writeHead(405).end());
    strict.on("connect", (_req, client: Socket) => {
      client.end("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"site\"\r\nContent-Length: 0\r\n\r\n");
    });
    await new Promise<void>((resolve) => strict.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(strict.address() as AddressInfo).port}`;
      const error = await checkCredentials(clientsWith({ HTTPS_PROXY: url })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DrsError);
      expect(error).toMatchObject({ code: "PROXY_AUTH_REQUIRED", category: "unreachable" });
      expect((error as DrsError).message).toContain(`(through the proxy ${url}) (HTTP 407)`);
    } finally {
      await new Promise((resolve) => strict.close(resolve));
    }
  });

  it("refuses a proxy that is not a URL, naming it without its password", () => {
    let error: unknown;
    try {
      clientsWith({ HTTPS_PROXY: `ftp://user:${PROXY_PASSWORD}@proxy.example.com` });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DrsError);
    expect((error as DrsError).category).toBe("input");
    expect((error as DrsError).message).toContain('HTTPS_PROXY "ftp://proxy.example.com"');
    expect((error as DrsError).message).not.toContain(PROXY_PASSWORD);
    // A password with a slash does not parse as a URL; it is hidden all the same.
    expect(() => clientsWith({ HTTPS_PROXY: `http://user:pa/ss-${PROXY_PASSWORD}@proxy:3128` })).toThrow('HTTPS_PROXY "http://proxy:3128" is not a proxy URL');
  });
});
