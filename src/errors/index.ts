export { FerryError, defineError, registeredErrors, ERROR_KINDS } from './ferry-error.js';
export type { ErrorKind, ErrorSpec, ErrorDetails, FerryErrorClass } from './ferry-error.js';
export * from './codes.js';
export { toFerryError } from './normalize.js';
