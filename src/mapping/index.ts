/*
 * failback-client/mapping: the public device-mapping library (docs/device-mapping.md). Pure: no
 * I/O, nothing else of this project. Only what is re-exported here is public.
 */
export { autoMapDevices, type AutoMapHints } from "./auto-map.js";
export { DeviceMappingError, type MappingProblem, TOO_SMALL_CODES } from "./errors.js";
export { formatDeviceMapping, MAPPING_FORMATS, type MappingFormat } from "./format.js";
export { MAX_INPUT_CHARS, parseDeviceMapping } from "./parse.js";
export { resolveDeviceMapping, type ResolveOptions } from "./resolve.js";
export { checkVolumeSizes, fitsVolume, GIB, type VolumeFit } from "./size-rule.js";
export {
  EXCLUDE,
  type Fit,
  isValueFormat,
  type LocalDisk,
  type LocalPartition,
  type MappingEntry,
  type RecoveryDisk,
  type ResolvedMapping,
  VALUE_FORMATS,
  type ValueFormat,
} from "./types.js";
