/* The DRS control plane (docs/emulator.md describes the stand-in the tests use). */
export { createClients, isRegion, normalizeEndpoint, type ClientOptions, type DrsClients } from "./clients.js";
export { checkCredentials } from "./credentials.js";
export { DrsError, translateAwsError, type DrsErrorCategory } from "./errors.js";
export { LAUNCHED_STATES, readFailbackState, waitForFailbackLaunch } from "./failback-state.js";
export { listRecoveryInstances, type RecoveryInstanceView } from "./instances.js";
export { canPlace, findOwnInstance, fittingInstances, type Identity } from "./matching.js";
export { FINGERPRINT_TAGS, publishFingerprint, readFingerprint, type PairingRole } from "./pairing.js";
export { agentAddress, getFailbackReplicationConfig, type FailbackReplicationConfig } from "./replication-config.js";
