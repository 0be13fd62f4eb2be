/**
 * The API edge: SMS over AWS JSON 1.1 with SigV4, health and metrics. The only context
 * that knows SMS error names and wire formats.
 */
export {
  createApi,
  isReadOnly,
  type ApiOptions,
  type CallContext,
  type OperationHandler,
  type OperationTable,
  type ApiServer,
} from './server.js';
export { ApiMetrics, type GaugeSample, type GaugeSource } from './metrics.js';
export { verifySigV4, CLOCK_SKEW_MS, SIGNING_SERVICE, type KeyLookup, type VerifiedCaller } from './sigv4.js';
export { validateInput } from './validate.js';
export { serializeOutput } from './serialize.js';
export { toWireError } from './errors.js';
export { OPERATIONS, TARGET_PREFIX, FERRY_OPERATIONS, FERRY_TARGET_PREFIX } from './model/index.js';
export { bindOperations } from './operations.js';
export { bindFerryOperations } from './ferry-operations.js';
export { ensureTlsMaterial, serverNames, type TlsFiles } from '../control/index.js';
