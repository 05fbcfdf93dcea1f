/*
 * Each end's own key pair and self-signed certificate, kept in its state folder (mode 0600) so a
 * restart keeps the identity the other side pinned. Only the certificate's sha256 fingerprint is
 * ever published.
 */
import { createHash, X509Certificate } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generate } from "selfsigned";

export interface TlsIdentity {
  keyPem: string;
  certPem: string;
  fingerprint: string;
}

/** Lowercase hex sha256 of a certificate's DER bytes. */
export function fingerprintOf(der: Buffer): string {
  return createHash("sha256").update(der).digest("hex");
}

export async function loadOrCreateIdentity(dir: string, commonName: string): Promise<TlsIdentity> {
  const keyPath = join(dir, "key.pem");
  const certPath = join(dir, "cert.pem");
  try {
    const [keyPem, certPem] = await Promise.all([readFile(keyPath, "utf8"), readFile(certPath, "utf8")]);
    return { keyPem, certPem, fingerprint: fingerprintOf(new X509Certificate(certPem).raw) };
  } catch {
    // None yet (or unreadable): make a new one below.
  }
  const now = new Date();
  const pems = await generate([{ name: "commonName", value: commonName }], {
    keyType: "ec",
    algorithm: "sha256",
    notBeforeDate: new Date(now.getTime() - 3600_000),
    notAfterDate: new Date(now.getTime() + 5 * 365 * 86400_000),
  });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(keyPath, pems.private, { mode: 0o600 });
  await writeFile(certPath, pems.cert, { mode: 0o600 });
  return { keyPem: pems.private, certPem: pems.cert, fingerprint: fingerprintOf(new X509Certificate(pems.cert).raw) };
}
