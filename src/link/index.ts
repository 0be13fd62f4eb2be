/**
 * The link (docs/connector-protocol.md): framed, compressed two-way calls over mutual TLS
 * between `ferry server` and the processes that dial it — remote connectors and remote
 * launch hosts. Transport only: what is called over it belongs to connectors/ (sources),
 * launch/ (instances) and control/ (the server's side).
 */
export { LinkPeer, MAX_IN_FLIGHT, DEFAULT_CALL_TIMEOUT_MS, type Handler, type PeerOptions } from './peer.js';
export { encodeFrame, FrameDecoder, MAX_BODY, MAX_HEADER } from './frames.js';
export { LinkSlot, RECONNECT_WAIT_MS, MAX_CALL_RETRIES, type LinkCaller } from './slot.js';
export {
  serveDisks,
  decodeExtents,
  LinkDiskLayer,
  MAX_OPEN_DISKS,
  MAX_READ,
  MAX_EXTENTS,
  type OpenedDisk,
  type DiskService,
} from './disks.js';
export {
  dial,
  enrol,
  keepLinked,
  HEARTBEAT_MS,
  CONNECT_TIMEOUT_MS,
  type LinkIdentity,
  type LinkTarget,
  type ClientLog,
  type KeepLinkedOptions,
  type Served,
} from './dial.js';
export { int, str, optStr, isRecord, MAX_PARAM_STRING, type Params } from './params.js';
export { BandwidthSchedule, Throttle, throttled, MIN_RATE } from './throttle.js';
