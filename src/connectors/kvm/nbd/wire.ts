/**
 * NBD message encoding and decoding from buffers, with every field the server controls
 * checked against the request it answers and against the caps in protocol.ts. No I/O:
 * the handshake and the client read exact byte counts and hand them here, so hostile
 * replies are tested from in-memory buffers.
 */
import { NbdProtocolError, NbdTooLargeError } from '../../../errors/index.js';
import {
  MAX_BLOCK_STATUS_EXTENTS,
  MAX_OPTION_REPLY_BYTES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_EXPORT,
  NBD_MAX_STRING_BYTES,
  NBD_OPTS_MAGIC,
  NBD_REP_MAGIC,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR_OFFSET,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  REQUEST_BYTES,
  isReplyError,
} from './protocol.js';

/** One extent of a metadata context: `flags` as the context defines them (see extents.ts). */
export interface NbdExtent {
  readonly offset: number;
  readonly length: number;
  readonly flags: number;
}

const corrupt = (message: string, details: Record<string, string | number | boolean> = {}): never => {
  throw new NbdProtocolError(message, details);
};

function u64(buf: Buffer, at: number, field: string): number {
  const v = buf.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) corrupt(`NBD ${field} ${v} is out of range`, { field });
  return Number(v);
}

function utf8(buf: Buffer, field: string): string {
  if (buf.length > NBD_MAX_STRING_BYTES) corrupt(`NBD ${field} is longer than 4096 bytes`, { field });
  return buf.toString('utf8');
}

// ── Handshake ───────────────────────────────────────────────────────────────────────
export function encodeOption(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(16);
  head.writeBigUInt64BE(NBD_OPTS_MAGIC, 0);
  head.writeUInt32BE(option, 8);
  head.writeUInt32BE(data.length, 12);
  return Buffer.concat([head, data]);
}

function nbdString(s: string, what: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > NBD_MAX_STRING_BYTES) {
    throw new NbdTooLargeError(`${what} is longer than the 4096 bytes NBD allows`, { field: what });
  }
  const out = Buffer.alloc(4 + b.length);
  out.writeUInt32BE(b.length, 0);
  b.copy(out, 4);
  return out;
}

/** NBD_OPT_GO data: export name, then the NBD_INFO types requested. */
export function encodeGoData(exportName: string, infos: readonly number[]): Buffer {
  const list = Buffer.alloc(2 + 2 * infos.length);
  list.writeUInt16BE(infos.length, 0);
  infos.forEach((t, i) => list.writeUInt16BE(t, 2 + 2 * i));
  return Buffer.concat([nbdString(exportName, 'export name'), list]);
}

/** NBD_OPT_SET_META_CONTEXT data: export name, number of queries, each query. */
export function encodeMetaContextData(exportName: string, queries: readonly string[]): Buffer {
  const n = Buffer.alloc(4);
  n.writeUInt32BE(queries.length, 0);
  return Buffer.concat([
    nbdString(exportName, 'export name'),
    n,
    ...queries.map((q) => nbdString(q, 'context')),
  ]);
}

export interface OptionReplyHeader {
  readonly option: number;
  readonly type: number;
  readonly length: number;
}

/** Parses the 20-byte option reply header; the payload length is capped before it is read. */
export function parseOptionReplyHeader(buf: Buffer, sentOption: number): OptionReplyHeader {
  if (buf.readBigUInt64BE(0) !== NBD_REP_MAGIC) corrupt('NBD option reply has a wrong magic');
  const option = buf.readUInt32BE(8);
  if (option !== sentOption)
    corrupt(`NBD option reply is for option ${option}, not ${sentOption}`, { option });
  const type = buf.readUInt32BE(12);
  const length = buf.readUInt32BE(16);
  if (length > MAX_OPTION_REPLY_BYTES) {
    throw new NbdTooLargeError(`NBD option reply of ${length} bytes exceeds ${MAX_OPTION_REPLY_BYTES}`, {
      option,
      length,
      limit: MAX_OPTION_REPLY_BYTES,
    });
  }
  return { option, type, length };
}

export type NbdInfo =
  | { readonly kind: 'export'; readonly size: number; readonly flags: number }
  | { readonly kind: 'block-size'; readonly min: number; readonly preferred: number; readonly max: number }
  | { readonly kind: 'other'; readonly infoType: number };

const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

/** Parses an NBD_REP_INFO payload (spec "NBD_OPT_INFO and NBD_OPT_GO"). */
export function parseInfo(payload: Buffer): NbdInfo {
  if (payload.length < 2) corrupt('NBD_REP_INFO is too short');
  const infoType = payload.readUInt16BE(0);
  if (infoType === NBD_INFO_EXPORT) {
    if (payload.length !== 12) corrupt('NBD_INFO_EXPORT has a wrong length', { length: payload.length });
    const size = payload.readBigUInt64BE(2);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new NbdTooLargeError(`NBD export size ${size} is out of range`, { size: String(size) });
    }
    return { kind: 'export', size: Number(size), flags: payload.readUInt16BE(10) };
  }
  if (infoType === NBD_INFO_BLOCK_SIZE) {
    if (payload.length !== 14) corrupt('NBD_INFO_BLOCK_SIZE has a wrong length', { length: payload.length });
    const min = payload.readUInt32BE(2);
    const preferred = payload.readUInt32BE(6);
    const max = payload.readUInt32BE(10);
    // Spec "Block size constraints": min a power of 2 in [1, 64 KiB]; preferred a power of
    // 2 ≥ max(min, 512); max a multiple of min (or 0xffffffff) and ≥ min.
    if (!isPow2(min) || min > 65536 || !isPow2(preferred) || preferred < min || max < min) {
      corrupt('NBD_INFO_BLOCK_SIZE values violate the spec', { min, preferred, max });
    }
    if (max !== 0xffffffff && max % min !== 0)
      corrupt('NBD maximum block size is not a multiple of the minimum', { min, max });
    return { kind: 'block-size', min, preferred, max };
  }
  return { kind: 'other', infoType };
}

/** Parses an NBD_REP_META_CONTEXT payload: 32-bit context id, then its name. */
export function parseMetaContext(payload: Buffer): { readonly id: number; readonly name: string } {
  if (payload.length < 5) corrupt('NBD_REP_META_CONTEXT is too short', { length: payload.length });
  return { id: payload.readUInt32BE(0), name: utf8(payload.subarray(4), 'context name') };
}

// ── Transmission ────────────────────────────────────────────────────────────────────
export function encodeRequest(
  type: number,
  flags: number,
  cookie: number,
  offset: number,
  length: number,
): Buffer {
  const b = Buffer.alloc(REQUEST_BYTES);
  b.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(BigInt(cookie), 8);
  b.writeBigUInt64BE(BigInt(offset), 16);
  b.writeUInt32BE(length, 24);
  return b;
}

/** Bytes of the reply header that starts with `magic` (the 4 bytes already read). */
export function replyHeaderBytes(magic: number): 16 | 20 {
  if (magic === NBD_SIMPLE_REPLY_MAGIC) return 16;
  if (magic === NBD_STRUCTURED_REPLY_MAGIC) return 20;
  return corrupt(`NBD reply has a wrong magic 0x${magic.toString(16)}`, { magic });
}

export type ReplyHeader =
  | { readonly kind: 'simple'; readonly errno: number; readonly cookie: number }
  | {
      readonly kind: 'structured';
      readonly flags: number;
      readonly type: number;
      readonly cookie: number;
      readonly length: number;
    };

/** Cookies Ferry sends are below 2^53; anything larger cannot match one and reads as -1. */
function cookieAt(buf: Buffer, at: number): number {
  const c = buf.readBigUInt64BE(at);
  return c > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(c);
}

export function parseReplyHeader(buf: Buffer): ReplyHeader {
  const magic = buf.readUInt32BE(0);
  if (replyHeaderBytes(magic) === 16) {
    if (buf.length !== 16) corrupt('NBD simple reply header has a wrong length');
    return { kind: 'simple', errno: buf.readUInt32BE(4), cookie: cookieAt(buf, 8) };
  }
  if (buf.length !== 20) corrupt('NBD structured reply header has a wrong length');
  return {
    kind: 'structured',
    flags: buf.readUInt16BE(4),
    type: buf.readUInt16BE(6),
    cookie: cookieAt(buf, 8),
    length: buf.readUInt32BE(16),
  };
}

/** The range a request covers; every chunk of its reply must stay inside it. */
export interface RequestRange {
  readonly offset: number;
  readonly length: number;
}

/**
 * Checks a structured chunk's payload length against its type and request before the
 * payload is read, so no allocation is sized by an unchecked server value.
 */
export function checkChunkLength(type: number, length: number, request: RequestRange, isRead: boolean): void {
  const d = { type, length };
  const tooLarge = (limit: number) => {
    throw new NbdTooLargeError(`NBD reply chunk of ${length} bytes exceeds ${limit} for its request`, {
      ...d,
      limit,
    });
  };
  if (type === NBD_REPLY_TYPE_NONE) {
    if (length !== 0) corrupt('NBD_REPLY_TYPE_NONE chunk carries a payload', d);
  } else if (type === NBD_REPLY_TYPE_OFFSET_DATA) {
    if (!isRead) corrupt('NBD data chunk in reply to a request that reads no data', d);
    if (length < 9) corrupt('NBD_REPLY_TYPE_OFFSET_DATA chunk is too short', d);
    if (length > 8 + request.length) tooLarge(8 + request.length);
  } else if (type === NBD_REPLY_TYPE_OFFSET_HOLE) {
    if (!isRead) corrupt('NBD hole chunk in reply to a request that reads no data', d);
    if (length !== 12) corrupt('NBD_REPLY_TYPE_OFFSET_HOLE chunk has a wrong length', d);
  } else if (type === NBD_REPLY_TYPE_BLOCK_STATUS) {
    if (isRead) corrupt('NBD block-status chunk in reply to a read', d);
    if (length < 12 || (length - 4) % 8 !== 0)
      corrupt('NBD_REPLY_TYPE_BLOCK_STATUS chunk has a wrong length', d);
    if (length > 4 + 8 * MAX_BLOCK_STATUS_EXTENTS) tooLarge(4 + 8 * MAX_BLOCK_STATUS_EXTENTS);
  } else if (isReplyError(type)) {
    // Unknown error types carry the same errno + message layout (spec "Structured reply types").
    const max = 6 + NBD_MAX_STRING_BYTES + (type === NBD_REPLY_TYPE_ERROR_OFFSET ? 8 : 0);
    if (length < 6) corrupt('NBD error chunk is too short', d);
    if (length > max) tooLarge(max);
  } else {
    corrupt(`NBD reply chunk of unknown type ${type}`, d);
  }
}

/** Where one data or hole chunk lands inside its request. */
export interface ChunkPlacement {
  readonly offset: number;
  readonly length: number;
}

function placeInside(request: RequestRange, offset: number, length: number, what: string): ChunkPlacement {
  if (offset < request.offset || offset + length > request.offset + request.length) {
    corrupt(
      `NBD ${what} chunk ${offset}+${length} lies outside its request ${request.offset}+${request.length}`,
      {
        offset,
        length,
      },
    );
  }
  return { offset, length };
}

/**
 * At the end of a read reply: the data and hole chunks must tile the request exactly —
 * no gap (bytes never written into the caller's buffer) and no overlap. Sorts `placed`.
 */
export function checkTiled(placed: ChunkPlacement[], request: RequestRange): void {
  placed.sort((a, b) => a.offset - b.offset);
  let pos = request.offset;
  for (const p of placed) {
    if (p.offset !== pos) corrupt('NBD read reply chunks leave a gap or overlap', { offset: p.offset });
    pos += p.length;
  }
  if (pos !== request.offset + request.length)
    corrupt('NBD read reply does not cover the request', { offset: pos });
}

/** OFFSET_DATA: the 8-byte offset header; data (length − 8 bytes) follows. */
export function parseDataChunkOffset(
  head: Buffer,
  chunkLength: number,
  request: RequestRange,
): ChunkPlacement {
  return placeInside(request, u64(head, 0, 'data offset'), chunkLength - 8, 'data');
}

/** OFFSET_HOLE: 8-byte offset, 32-bit hole size. */
export function parseHoleChunk(payload: Buffer, request: RequestRange): ChunkPlacement {
  const size = payload.readUInt32BE(8);
  if (size === 0) corrupt('NBD hole chunk of length 0');
  return placeInside(request, u64(payload, 0, 'hole offset'), size, 'hole');
}

export interface ErrorChunk {
  readonly errno: number;
  readonly message: string;
  readonly offset?: number;
}

export function parseErrorChunk(type: number, payload: Buffer, request: RequestRange): ErrorChunk {
  const errno = payload.readUInt32BE(0);
  const msgLen = payload.readUInt16BE(4);
  const tail = type === NBD_REPLY_TYPE_ERROR_OFFSET ? 8 : 0;
  if (
    payload.length < 6 + msgLen + tail ||
    (type === NBD_REPLY_TYPE_ERROR_OFFSET && payload.length !== 14 + msgLen)
  ) {
    corrupt('NBD error chunk message length disagrees with the chunk length', {
      msgLen,
      length: payload.length,
    });
  }
  if (errno === 0) corrupt('NBD error chunk with error value 0');
  const message = utf8(payload.subarray(6, 6 + msgLen), 'error message');
  if (type !== NBD_REPLY_TYPE_ERROR_OFFSET) return { errno, message };
  const offset = u64(payload, 6 + msgLen, 'error offset');
  placeInside(request, offset, 1, 'error offset');
  return { errno, message, offset };
}

/**
 * BLOCK_STATUS payload: context id, then (length, flags) descriptors covering the request
 * from its offset. The server may cover less than asked (the caller asks again from where
 * it stopped); only the final descriptor may reach past the request end, and it is clamped
 * (spec "NBD_CMD_BLOCK_STATUS"). Descriptors of length 0 are refused (they make no progress).
 */
export function parseBlockStatus(
  payload: Buffer,
  request: RequestRange,
): { readonly contextId: number; readonly extents: NbdExtent[] } {
  const contextId = payload.readUInt32BE(0);
  const count = (payload.length - 4) / 8;
  const end = request.offset + request.length;
  const extents: NbdExtent[] = [];
  let pos = request.offset;
  for (let i = 0; i < count; i++) {
    const length = payload.readUInt32BE(4 + 8 * i);
    const flags = payload.readUInt32BE(8 + 8 * i);
    if (length === 0) corrupt('NBD block-status descriptor of length 0', { contextId, index: i });
    if (pos >= end)
      corrupt('NBD block-status descriptors run past the requested range', { contextId, index: i });
    const take = Math.min(length, end - pos);
    if (take < length && i !== count - 1) {
      corrupt('NBD block-status descriptor crosses the end of the requested range', { contextId, index: i });
    }
    extents.push({ offset: pos, length: take, flags });
    pos += take;
  }
  return { contextId, extents };
}
