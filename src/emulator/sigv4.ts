/*
 * SigV4 verification for the emulator: the request is rebuilt as the SDK signed it and signed
 * again with the stored secret (by @smithy/signature-v4, the SDK's own signer, not hand-rolled
 * crypto), and the two signatures are compared in constant time.
 */
import { timingSafeEqual } from "node:crypto";
import { Hash } from "@smithy/hash-node";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";

export interface StoredCredential {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  account: string;
  allowedActions?: string[];
  expiresAt?: string;
}

export type Verdict =
  | { ok: true; credential: StoredCredential; service: string }
  | { ok: false; reason: "unknown-key" | "bad-signature" | "expired" | "missing"; service: string };

export interface IncomingSigned {
  method: string;
  host: string;
  rawPath: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  body: string;
}

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/;

export async function verifySignature(request: IncomingSigned, credentials: StoredCredential[], now: Date): Promise<Verdict> {
  const match = AUTH.exec(request.headers.authorization ?? "");
  if (!match) return { ok: false, reason: "missing", service: "" };
  const [, keyId, , region, service, signedHeaders, signature] = match as unknown as string[];
  const credential = credentials.find((c) => c.accessKeyId === keyId);
  if (!credential || (credential.sessionToken ?? "") !== (request.headers["x-amz-security-token"] ?? "")) {
    return { ok: false, reason: "unknown-key", service: service! };
  }
  if (credential.expiresAt && Date.parse(credential.expiresAt) <= now.getTime()) return { ok: false, reason: "expired", service: service! };

  const headers: Record<string, string> = {};
  for (const name of signedHeaders!.split(";")) headers[name] = request.headers[name] ?? "";
  const [hostname, port] = request.host.split(":");
  const query: Record<string, string | string[]> = {};
  for (const key of new Set(request.query.keys())) {
    const all = request.query.getAll(key);
    query[key] = all.length === 1 ? all[0]! : all;
  }
  const rebuilt = new HttpRequest({
    method: request.method,
    protocol: "http:",
    hostname,
    port: port ? Number(port) : undefined,
    path: request.rawPath,
    query,
    headers,
    body: request.body,
  });
  const signer = new SignatureV4({
    service: service!,
    region: region!,
    credentials: { accessKeyId: credential.accessKeyId, secretAccessKey: credential.secretAccessKey, sessionToken: credential.sessionToken },
    sha256: Hash.bind(null, "sha256"),
  });
  const amzDate = request.headers["x-amz-date"] ?? "";
  const signingDate = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  const signed = await signer.sign(rebuilt, { signingDate, signableHeaders: new Set(Object.keys(headers)) });
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization ?? signed.headers.Authorization))?.[1] ?? "";
  const same = expected.length === signature!.length && timingSafeEqual(Buffer.from(expected), Buffer.from(signature!));
  return same ? { ok: true, credential, service: service! } : { ok: false, reason: "bad-signature", service: service! };
}
