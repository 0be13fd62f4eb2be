/** QMP: the control channel to a running QEMU (see client.ts; typed commands in commands-*.ts). */
export {
  QmpClient,
  DEFAULT_QMP_COMMAND_TIMEOUT_MS,
  DEFAULT_QMP_CONNECT_TIMEOUT_MS,
  MAX_BUFFERED_QMP_EVENTS,
  type QmpEndpoint,
  type QmpEvent,
  type QmpOptions,
} from './client.js';
export {
  MAX_QMP_MESSAGE_BYTES,
  parseQmpMessage,
  QmpLineBuffer,
  type QmpMessage,
  type QmpVersion,
} from './framing.js';
export * from './commands-query.js';
export * from './commands-block.js';
