/* The data plane: block-delta replication over TLS + WebSocket (docs/protocol.md). */
export { startAgent, type Agent, type AgentOptions } from "./agent.js";
export { replicate, type Phase, type ReplicateOptions, type ReplicationEvent, type ReplicationSummary } from "./client.js";
export { decode, encode, LEAF_SIZE, Type, VERSION, type Frame } from "./codec.js";
export { ReplicationError } from "./errors.js";
export { fingerprintOf, loadOrCreateIdentity, type TlsIdentity } from "./identity.js";
export { openVolume, type Volume } from "./volume-file.js";
