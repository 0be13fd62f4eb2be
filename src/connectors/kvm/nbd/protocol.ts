/**
 * NBD for the client: the protocol's values (shared with Ferry's NBD server) and Ferry's caps
 * on what a server may send.
 * Spec: https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md (values also
 * in QEMU include/block/nbd.h and libnbd lib/nbd-protocol.h). Everything is big-endian.
 */

import { nbdProtocol } from '../../../disk/index.js';

/** The protocol's own values (shared with the other side: src/disk/io/nbd-protocol.ts). */
export const {
  NBD_MAGIC,
  NBD_OPTS_MAGIC,
  NBD_CLISERV_MAGIC,
  NBD_REP_MAGIC,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_OPT_ABORT,
  NBD_OPT_GO,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_OPT_SET_META_CONTEXT,
  NBD_REP_ACK,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_REP_ERR_UNSUP,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_PLATFORM,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_SHUTDOWN,
  NBD_REP_ERR_BLOCK_SIZE_REQD,
  NBD_REP_ERR_TOO_BIG,
  NBD_REP_ERR_EXT_HEADER_REQD,
  REP_ERROR_NAMES,
  isRepError,
  NBD_INFO_EXPORT,
  NBD_INFO_BLOCK_SIZE,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  REQUEST_BYTES,
  SIMPLE_REPLY_BYTES,
  STRUCTURED_HEADER_BYTES,
  NBD_CMD_READ,
  NBD_CMD_DISC,
  NBD_CMD_BLOCK_STATUS,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_ERROR_OFFSET,
  isReplyError,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
  NBD_STATE_DIRTY,
  CONTEXT_BASE_ALLOCATION,
  CONTEXT_ALLOCATION_DEPTH,
  dirtyBitmapContext,
  NBD_ERRNO_NAMES,
  NBD_MAX_STRING_BYTES,
} = nbdProtocol;

// ── Caps on what the server sends (each bounds an allocation or a loop) ─────────────
const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Largest option reply payload read during the handshake: 64 KiB. Replies Ferry asks for
 * are at most a context id plus a 4096-byte name, or a few bytes of NBD_INFO.
 */
export const MAX_OPTION_REPLY_BYTES = 64 * KiB;
/** Option replies accepted for one option (one per info type or context asked for, plus slack). */
export const MAX_OPTION_REPLIES = 64;
/**
 * Largest payload of one data request: 32 MiB, the size the spec tells interoperable
 * clients to stay under when the server advertises no maximum; a smaller advertised
 * maximum block size wins. Larger reads are split.
 */
export const MAX_REQUEST_PAYLOAD = 32 * MiB;
/**
 * Most extents in one NBD_REPLY_TYPE_BLOCK_STATUS chunk: 2^18 (2 MiB of descriptors),
 * twice QEMU's own server cap (NBD_MAX_BLOCK_STATUS_EXTENTS = 1 MiB / 8 in
 * nbd/server.c). More is refused as FERRY_NBD_TOO_LARGE before the payload is read.
 */
export const MAX_BLOCK_STATUS_EXTENTS = 256 * KiB;
/**
 * Largest range asked in one NBD_CMD_BLOCK_STATUS: 2 GiB (fits the 32-bit length with
 * room for alignment). Servers answer shorter when they wish; the caller loops.
 */
export const MAX_BLOCK_STATUS_LENGTH = 2 * 1024 * MiB;
/**
 * Most chunks accepted for one read reply: 65 536 (one per 512 bytes of a 32 MiB read).
 * QEMU sends one chunk per data or hole run; a server fragmenting a reply further is
 * refused rather than tracked without bound.
 */
export const MAX_READ_CHUNKS = 64 * KiB;
/** Requests in flight on one connection by default; each holds at most one request payload. */
export const DEFAULT_MAX_IN_FLIGHT = 16;
