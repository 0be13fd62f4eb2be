export { FerryError, defineError, registeredErrors, errorFromWire, ERROR_KINDS } from './ferry-error.js';
export type { ErrorKind, ErrorSpec, ErrorDetails, FerryErrorClass } from './ferry-error.js';
export * from './codes.js';
export * from './codes-store.js';
export * from './codes-sources.js';
export * from './codes-launch.js';
export { toFerryError } from './normalize.js';
