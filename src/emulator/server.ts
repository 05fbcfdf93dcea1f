/*
 * A local stand-in for DRS and STS, on loopback, for the demo and the tests. It speaks the wire
 * protocols the unmodified SDK clients use (DRS: REST-JSON; STS: the Query protocol with XML
 * answers), checks every signature against the state's credentials, and answers errors with the
 * types and HTTP statuses the real services use, so the client's error handling is exercised for
 * real. Invariants: state changes only through the operations; pagination as DRS does it
 * (maxResults, nextToken); a launched failback moves through DRS's failback states.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { verifySignature } from "./sigv4.js";
import type { EmulatorState, RecoveryInstanceRecord } from "./state.js";

export interface Emulator {
  url: string;
  state: EmulatorState;
  /** The next `count` requests are answered with ThrottlingException (429). */
  throttleNext(count: number): void;
  close(): Promise<void>;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const STS_ERRORS: Record<string, string> = {
  UnrecognizedClientException: "InvalidClientTokenId",
  InvalidSignatureException: "SignatureDoesNotMatch",
  ExpiredTokenException: "ExpiredToken",
};

function page<T>(items: T[], body: { maxResults?: number; nextToken?: string }): { items: T[]; nextToken?: string } {
  const start = body.nextToken ? Number(Buffer.from(body.nextToken, "base64url").toString()) : 0;
  if (!Number.isInteger(start) || start < 0 || start > items.length) throw new ApiError(400, "ValidationException", "Invalid nextToken");
  const size = Math.min(Math.max(body.maxResults ?? 1000, 1), 1000);
  const end = start + size;
  return { items: items.slice(start, end), nextToken: end < items.length ? Buffer.from(String(end)).toString("base64url") : undefined };
}

export async function startEmulator(options: { state: EmulatorState; host?: string; port?: number; log?: (line: string) => void }): Promise<Emulator> {
  const state = options.state;
  let throttled = 0;
  let jobCounter = 0;
  const log = options.log ?? (() => undefined);

  const instance = (id: unknown): RecoveryInstanceRecord => {
    const found = state.recoveryInstances.find((r) => r.recoveryInstanceID === id);
    if (!found) throw new ApiError(404, "ResourceNotFoundException", `Recovery instance ${String(id)} not found`);
    return found;
  };
  const byArn = (arn: string) => {
    const found = [...state.recoveryInstances, ...state.sourceServers].find((r) => r.arn === arn);
    if (!found) throw new ApiError(404, "ResourceNotFoundException", `Resource ${arn} not found`);
    return found;
  };

  const drsOperations: Record<string, (body: Record<string, unknown>, path: string[], query: URLSearchParams, method: string) => unknown> = {
    DescribeRecoveryInstances(body) {
      const filters = (body.filters ?? {}) as { recoveryInstanceIDs?: string[]; sourceServerIDs?: string[] };
      const items = state.recoveryInstances.filter(
        (r) => (!filters.recoveryInstanceIDs?.length || filters.recoveryInstanceIDs.includes(r.recoveryInstanceID)) && (!filters.sourceServerIDs?.length || filters.sourceServerIDs.includes(r.sourceServerID ?? "")),
      );
      return page(items, body);
    },
    DescribeSourceServers(body) {
      const filters = (body.filters ?? {}) as { sourceServerIDs?: string[] };
      return page(state.sourceServers.filter((s) => !filters.sourceServerIDs?.length || filters.sourceServerIDs.includes(s.sourceServerID)), body);
    },
    GetFailbackReplicationConfiguration(body) {
      const id = instance(body.recoveryInstanceID).recoveryInstanceID;
      return { recoveryInstanceID: id, bandwidthThrottling: 0, usePrivateIP: false, ...state.failbackReplicationConfigurations[id] };
    },
    UpdateFailbackReplicationConfiguration(body) {
      const id = instance(body.recoveryInstanceID).recoveryInstanceID;
      const { recoveryInstanceID: _, ...changes } = body;
      state.failbackReplicationConfigurations[id] = { recoveryInstanceID: id, ...state.failbackReplicationConfigurations[id], ...changes };
      return {};
    },
    StartFailbackLaunch(body) {
      const ids = (body.recoveryInstanceIDs ?? []) as string[];
      if (ids.length === 0) throw new ApiError(400, "ValidationException", "recoveryInstanceIDs must not be empty");
      const records = ids.map(instance);
      jobCounter += 1;
      const job = {
        jobID: `drsjob-${String(jobCounter).padStart(17, "0")}`,
        arn: `arn:aws:drs:${state.region}:${state.credentials[0]?.account ?? "000000000000"}:job/drsjob-${jobCounter}`,
        type: "LAUNCH",
        initiatedBy: "FAILBACK",
        creationDateTime: new Date().toISOString(),
        status: "STARTED",
        participatingServers: records.map((r) => ({ sourceServerID: r.sourceServerID, recoveryInstanceID: r.recoveryInstanceID, launchStatus: "PENDING" })),
      };
      state.jobs.push(job);
      for (const r of records) r.failback = { ...(r.failback ?? {}), state: "FAILBACK_LAUNCH_STATE_NOT_AVAILABLE", failbackJobID: job.jobID };
      // The launch completes shortly after, as the real one does after the final sync.
      setTimeout(() => {
        job.status = "COMPLETED";
        for (const r of records) r.failback = { ...(r.failback ?? {}), state: "FAILBACK_COMPLETED" };
      }, 2_000).unref();
      return { job };
    },
    StopFailback(body) {
      const r = instance(body.recoveryInstanceID);
      r.failback = { ...(r.failback ?? {}), state: "FAILBACK_NOT_STARTED" };
      return {};
    },
    DescribeJobs(body) {
      const filters = (body.filters ?? {}) as { jobIDs?: string[] };
      return page(state.jobs.filter((j) => !filters.jobIDs?.length || filters.jobIDs.includes(String(j.jobID))), body);
    },
    tags(body, path, query, method) {
      const resource = byArn(decodeURIComponent(path[1] ?? ""));
      resource.tags ??= {};
      if (method === "GET") return { tags: resource.tags };
      if (method === "POST") {
        Object.assign(resource.tags, (body.tags ?? {}) as Record<string, string>);
        return {};
      }
      for (const key of query.getAll("tagKeys")) delete resource.tags[key];
      return {};
    },
  };
  const actionName = (path: string[], method: string) =>
    path[0] === "tags" ? (method === "GET" ? "ListTagsForResource" : method === "POST" ? "TagResource" : "UntagResource") : (path[0] ?? "");

  const send = (res: ServerResponse, status: number, headers: Record<string, string>, body: string) => {
    res.writeHead(status, { "content-length": Buffer.byteLength(body), "x-amzn-requestid": `emu-${Date.now()}`, ...headers });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString();
    const url = new URL(req.url ?? "/", "http://emulator");
    const rawPath = (req.url ?? "/").split("?")[0] ?? "/";
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(",") : (v ?? "")]));
    const stsForm = (headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded") ? new URLSearchParams(body) : null;
    const isSts = stsForm !== null && stsForm.has("Action");
    const path = rawPath.split("/").filter(Boolean);
    const action = isSts ? `sts:${stsForm?.get("Action")}` : `drs:${actionName(path, req.method ?? "GET")}`;

    const fail = (error: ApiError) => {
      log(`${action} -> ${error.status} ${error.type}`);
      if (isSts) {
        const code = STS_ERRORS[error.type] ?? error.type.replace(/Exception$/, "");
        const xml = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${error.message}</Message></Error><RequestId>emu</RequestId></ErrorResponse>`;
        send(res, error.status, { "content-type": "text/xml" }, xml);
      } else {
        send(res, error.status, { "content-type": "application/json", "x-amzn-errortype": error.type }, JSON.stringify({ message: error.message }));
      }
    };

    try {
      if (throttled > 0) {
        throttled -= 1;
        throw new ApiError(isSts ? 400 : 429, isSts ? "Throttling" : "ThrottlingException", "Rate exceeded");
      }
      const verdict = await verifySignature({ method: req.method ?? "GET", host: headers.host ?? "", rawPath, query: url.searchParams, headers, body }, state.credentials, new Date());
      if (!verdict.ok) {
        if (verdict.reason === "unknown-key") throw new ApiError(403, "UnrecognizedClientException", "The security token included in the request is invalid.");
        if (verdict.reason === "expired") throw new ApiError(403, "ExpiredTokenException", "The security token included in the request is expired");
        if (verdict.reason === "missing") throw new ApiError(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
        throw new ApiError(403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided.");
      }
      const allowed = verdict.credential.allowedActions;
      if (allowed && !allowed.includes(action) && !allowed.includes("*")) {
        throw new ApiError(403, isSts ? "AccessDenied" : "AccessDeniedException", `User: arn:aws:iam::${verdict.credential.account}:user/emulated is not authorized to perform: ${action}`);
      }
      if (isSts) {
        if (stsForm?.get("Action") !== "GetCallerIdentity") throw new ApiError(400, "InvalidAction", `Could not find operation ${stsForm?.get("Action")}`);
        const account = verdict.credential.account;
        const xml =
          `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>` +
          `<Arn>arn:aws:iam::${account}:user/emulated</Arn><UserId>AIDA${account}</UserId><Account>${account}</Account>` +
          `</GetCallerIdentityResult><ResponseMetadata><RequestId>emu</RequestId></ResponseMetadata></GetCallerIdentityResponse>`;
        log(`${action} -> 200`);
        send(res, 200, { "content-type": "text/xml" }, xml);
        return;
      }
      const operation = drsOperations[path[0] ?? ""];
      if (!operation) throw new ApiError(404, "UnknownOperationException", `Unknown operation ${rawPath}`);
      let input: Record<string, unknown> = {};
      if (body) {
        try {
          input = JSON.parse(body) as Record<string, unknown>;
        } catch {
          throw new ApiError(400, "ValidationException", "The request body is not JSON");
        }
      }
      const result = operation(input, path, url.searchParams, req.method ?? "GET");
      log(`${action} -> 200`);
      send(res, 200, { "content-type": "application/json" }, JSON.stringify(result ?? {}));
    } catch (error) {
      fail(error instanceof ApiError ? error : new ApiError(500, "InternalServerException", "internal error"));
    }
  };

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    state,
    throttleNext(count) {
      throttled = count;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
