/**
 * NBD for the read-only server: the protocol's values (shared with Ferry's NBD client,
 * src/disk/io/nbd-protocol.ts) and the server's caps on what a client may send.
 * Spec: https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md.
 */

import { nbdProtocol } from '../../disk/index.js';

/** The protocol's own values (shared with the other side: src/disk/io/nbd-protocol.ts). */
export const {
  NBD_MAGIC,
  NBD_OPTS_MAGIC,
  NBD_REP_MAGIC,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_ABORT,
  NBD_OPT_LIST,
  NBD_OPT_STARTTLS,
  NBD_OPT_INFO,
  NBD_OPT_GO,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_REP_ACK,
  NBD_REP_SERVER,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_REP_ERR_UNSUP,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_SHUTDOWN,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_BLOCK_SIZE,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  REQUEST_BYTES,
  NBD_CMD_READ,
  NBD_CMD_WRITE,
  NBD_CMD_DISC,
  NBD_CMD_FLUSH,
  NBD_CMD_TRIM,
  NBD_CMD_CACHE,
  NBD_CMD_WRITE_ZEROES,
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
  CONTEXT_BASE_ALLOCATION,
  EPERM,
  EIO,
  EINVAL,
  EOVERFLOW,
  ESHUTDOWN,
  NBD_MAX_STRING_BYTES,
} = nbdProtocol;

/** The id this server gives base:allocation when a client selects it. */
export const BASE_ALLOCATION_ID = 1;

// ── Caps on what a client may send (each bounds an allocation, a loop or a wait) ────
const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Largest option payload read: 64 KiB. The largest legitimate option is
 * NBD_OPT_SET_META_CONTEXT with a 4096-byte name and a handful of context queries; a
 * longer option is a hostile client and its connection is closed before anything is read.
 */
export const MAX_OPTION_BYTES = 64 * KiB;
/** Options accepted before the client must pick an export: QEMU sends about five. */
export const MAX_OPTIONS = 256;
/**
 * Largest READ (and largest WRITE payload skipped to stay in sync): 32 MiB, the size the
 * spec tells clients to stay under when the server advertises no maximum, and the maximum
 * this server advertises in NBD_INFO_BLOCK_SIZE. Larger reads get EINVAL; a larger write
 * payload cannot be skipped cheaply and closes the connection.
 */
export const MAX_REQUEST_BYTES = 32 * MiB;
/** Block sizes advertised: any alignment is accepted (min 1); 4 KiB preferred. */
export const MIN_BLOCK_SIZE = 1;
export const PREFERRED_BLOCK_SIZE = 4 * KiB;
/**
 * Descriptors in one BLOCK_STATUS reply: 16 384 (128 KiB). The spec lets a server answer
 * for less than the range asked (the client asks again from where the reply ended); QEMU's
 * own server caps a reply at 1 MiB of descriptors.
 */
export const MAX_BLOCK_STATUS_EXTENTS = 16 * KiB;
/** Requests of one connection being served at once; more wait (backpressure, not an error). */
export const DEFAULT_MAX_IN_FLIGHT = 16;
/**
 * Bytes of replies one connection may have in flight (read but not yet handed to the
 * kernel): 32 MiB, i.e. one maximal read. A client that stops reading its replies stalls
 * itself at this bound instead of growing the server's memory.
 */
export const MAX_IN_FLIGHT_BYTES = 32 * MiB;
/** Connections one server accepts at once (QEMU opens one per backing export). */
export const DEFAULT_MAX_CONNECTIONS = 16;
/** A client that has not entered transmission within this time is disconnected. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Bytes buffered from a socket before it is paused. */
export const READ_HIGH_WATER_BYTES = 1 * MiB;
/** Longest unix socket path (sockaddr_un.sun_path is 108 bytes with the NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;
