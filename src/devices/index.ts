/* Local disks and this machine's identity (docs/devices.md). */
export { LIVE_MEDIUM_LABEL, readFilesInUse, readInventory, type DiskInfo, type DiskKind, type InventoryOptions } from "./inventory.js";
export { fileIdentity, type LoopBacking } from "./loops.js";
export { lowRamWarning, MIN_RAM_BYTES, normalizeUuid, readIdentity, uuidSpellings, type MachineIdentity } from "./identity.js";
