/**
 * NBD protocol constants a read-only server needs, and the server's caps on what a client
 * may send. Spec: https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md (values
 * also in QEMU include/block/nbd.h). Everything on the wire is big-endian.
 *
 * The values are copied from the spec (and agree with src/connectors/kvm/nbd/protocol.ts,
 * the client side): launch may not import connectors, and these numbers never change.
 */

// ── Handshake ───────────────────────────────────────────────────────────────────────
export const NBD_MAGIC = 0x4e42444d41474943n; // "NBDMAGIC"
export const NBD_OPTS_MAGIC = 0x49484156454f5054n; // "IHAVEOPT"
export const NBD_REP_MAGIC = 0x0003e889045565a9n;

/** Handshake flags the server sends. */
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;
/** Client flags; any other bit set makes the server drop the connection (spec "Client flags"). */
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;

export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
const REP_ERR = 0x80000000;
export const NBD_REP_ERR_UNSUP = REP_ERR + 1;
export const NBD_REP_ERR_POLICY = REP_ERR + 2;
export const NBD_REP_ERR_INVALID = REP_ERR + 3;
export const NBD_REP_ERR_UNKNOWN = REP_ERR + 6;
export const NBD_REP_ERR_SHUTDOWN = REP_ERR + 7;

export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

/** Transmission flags (16 bits, sent with NBD_INFO_EXPORT / after NBD_OPT_EXPORT_NAME). */
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;

// ── Transmission ────────────────────────────────────────────────────────────────────
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;
export const REQUEST_BYTES = 28;

export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_CACHE = 5;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_CMD_BLOCK_STATUS = 7;

export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;

export const NBD_REPLY_FLAG_DONE = 1 << 0;
export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
export const NBD_REPLY_TYPE_ERROR = (1 << 15) + 1;

/** base:allocation flags. */
export const NBD_STATE_HOLE = 1 << 0;
export const NBD_STATE_ZERO = 1 << 1;
export const CONTEXT_BASE_ALLOCATION = 'base:allocation';
/** The id this server gives base:allocation when a client selects it. */
export const BASE_ALLOCATION_ID = 1;

/** Error values (spec "Error values"). */
export const EPERM = 1;
export const EIO = 5;
export const EINVAL = 22;
export const EOVERFLOW = 75;
export const ESHUTDOWN = 108;

// ── Caps on what a client may send (each bounds an allocation, a loop or a wait) ────
const KiB = 1024;
const MiB = 1024 * KiB;

/** The spec's cap on any string: export names, context queries. */
export const NBD_MAX_STRING_BYTES = 4096;
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
