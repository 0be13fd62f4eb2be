/** NBD: the data channel to a disk exported by QEMU (qemu-nbd, or QMP block-export-add). */
export {
  NbdClient,
  DEFAULT_NBD_CONNECT_TIMEOUT_MS,
  DEFAULT_NBD_REQUEST_TIMEOUT_MS,
  type NbdClientOptions,
  type NbdEndpoint,
} from './client.js';
export type { NbdExportInfo, HandshakeOptions } from './handshake.js';
export type { NbdExtent } from './wire.js';
export {
  allocationDepth,
  allocationKind,
  combineDirtyAndAllocation,
  isDirty,
  queryExtents,
  toAllocationExtents,
  toDirtyExtents,
  type ChangeExtent,
  type ChangeKind,
} from './extents.js';
export { NbdByteSource, openNbdSource } from './source.js';
export {
  CONTEXT_ALLOCATION_DEPTH,
  CONTEXT_BASE_ALLOCATION,
  DEFAULT_MAX_IN_FLIGHT,
  MAX_BLOCK_STATUS_EXTENTS,
  MAX_BLOCK_STATUS_LENGTH,
  MAX_READ_CHUNKS,
  MAX_REQUEST_PAYLOAD,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_READ_ONLY,
  NBD_STATE_DIRTY,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
  dirtyBitmapContext,
} from './protocol.js';
