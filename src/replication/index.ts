/* The data plane: block-delta replication over TLS + WebSocket (docs/protocol.md). */
export { startAgent, type Agent, type AgentOptions } from "./agent.js";
export { replicate, replicateOver, type Connect, type EngineOptions, type Phase, type ReplicateOptions, type ReplicationEvent, type ReplicationSummary } from "./client.js";
export { serveSession, type ServedVolume, type SessionOptions } from "./agent-session.js";
export { Codec, decode, encode, LEAF_SIZE, Type, VERSION, type Frame } from "./codec.js";
export type { FrameLink } from "./link.js";
export { ReplicationError } from "./errors.js";
export { fingerprintOf, loadOrCreateIdentity, type TlsIdentity } from "./identity.js";
export { openVolume, type BlockSink, type BlockSource, type Volume } from "./volume-file.js";
