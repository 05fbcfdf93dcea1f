/* A local DRS + STS endpoint for the demo and the tests (docs/emulator.md). */
export { startEmulator, type Emulator } from "./server.js";
export { parseState, StateError, type EmulatorState } from "./state.js";
