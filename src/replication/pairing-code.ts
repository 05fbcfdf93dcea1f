/*
 * Manual pairing (sites without the control plane): both ends are given the same pairing code and
 * prove it with an HMAC over keying material exported from this very TLS session (RFC 5705), so a
 * proof cannot be replayed on another connection and a man in the middle, who has two different
 * sessions, cannot relay it. The code itself never crosses the wire. An attacker who can observe
 * one proof could try to guess a short code offline, so codes should be long and random.
 */
import { createHmac } from "node:crypto";
import type { TLSSocket } from "node:tls";

export function pairingProof(code: string, socket: TLSSocket, role: "agent" | "client"): string {
  const material = socket.exportKeyingMaterial(32, "EXPORTER-failback-pairing", Buffer.alloc(0));
  return createHmac("sha256", code).update(material).update(role).digest("hex");
}
