/**
 * The server side of NBD's wire format, as pure functions over buffers: parse what a
 * client sends (checked against the caps in protocol.ts, so no allocation or loop is
 * sized by an unchecked client value) and encode what the server answers. No I/O: the
 * handshake and transmission loops read exact byte counts and hand them here, so hostile
 * input is unit-tested from in-memory buffers.
 */
import { NbdClientRejectedError } from '../../errors/index.js';
import {
  MAX_OPTION_BYTES,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_EXPORT,
  NBD_MAGIC,
  NBD_MAX_STRING_BYTES,
  NBD_OPTS_MAGIC,
  NBD_REP_MAGIC,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  REQUEST_BYTES,
} from './protocol.js';

const reject = (message: string, details: Record<string, string | number> = {}): never => {
  throw new NbdClientRejectedError(message, details);
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A client string: ≤ 4096 bytes of valid UTF-8 without NUL; undefined otherwise. */
function nbdString(buf: Buffer): string | undefined {
  if (buf.length > NBD_MAX_STRING_BYTES || buf.includes(0)) return undefined;
  try {
    return utf8.decode(buf);
  } catch {
    return undefined;
  }
}

// ── Handshake ───────────────────────────────────────────────────────────────────────
/** The 18-byte newstyle greeting: NBDMAGIC, IHAVEOPT, handshake flags. */
export function encodeGreeting(): Buffer {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBD_MAGIC, 0);
  b.writeBigUInt64BE(NBD_OPTS_MAGIC, 8);
  b.writeUInt16BE(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES, 16);
  return b;
}

/**
 * The 32-bit client flags. Unknown bits must make the server drop the connection (spec
 * "Client flags"); so does a client without fixed newstyle, which this server requires
 * (every client since nbd 3.x / QEMU 2.x sets it; non-fixed clients cannot be told "no").
 */
export function parseClientFlags(buf: Buffer): { readonly noZeroes: boolean } {
  const flags = buf.readUInt32BE(0);
  if (flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
    reject('NBD client set unknown client flags', { flags });
  if (!(flags & NBD_FLAG_C_FIXED_NEWSTYLE)) reject('NBD client does not speak fixed newstyle', { flags });
  return { noZeroes: (flags & NBD_FLAG_C_NO_ZEROES) !== 0 };
}

/** The 16-byte option header; the length is capped before the data is read. */
export function parseOptionHeader(buf: Buffer): { readonly option: number; readonly length: number } {
  if (buf.readBigUInt64BE(0) !== NBD_OPTS_MAGIC) reject('NBD option has a wrong magic');
  const option = buf.readUInt32BE(8);
  const length = buf.readUInt32BE(12);
  if (length > MAX_OPTION_BYTES) {
    reject(`NBD option of ${length} bytes exceeds ${MAX_OPTION_BYTES}`, {
      option,
      length,
      limit: MAX_OPTION_BYTES,
    });
  }
  return { option, length };
}

export function encodeOptionReply(option: number, type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(20 + payload.length);
  b.writeBigUInt64BE(NBD_REP_MAGIC, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(type >>> 0, 12);
  b.writeUInt32BE(payload.length, 16);
  payload.copy(b, 20);
  return b;
}

/** Reads a 32-bit-length-prefixed string at `at`; undefined when it does not fit or is invalid. */
function prefixed(data: Buffer, at: number): { value: string; next: number } | undefined {
  if (at + 4 > data.length) return undefined;
  const n = data.readUInt32BE(at);
  if (n > NBD_MAX_STRING_BYTES || at + 4 + n > data.length) return undefined;
  const value = nbdString(data.subarray(at + 4, at + 4 + n));
  return value === undefined ? undefined : { value, next: at + 4 + n };
}

/** NBD_OPT_INFO / NBD_OPT_GO data: name, count, info types. Undefined = NBD_REP_ERR_INVALID. */
export function parseGoData(
  data: Buffer,
): { readonly name: string; readonly infos: readonly number[] } | undefined {
  const name = prefixed(data, 0);
  if (!name || name.next + 2 > data.length) return undefined;
  const n = data.readUInt16BE(name.next);
  if (data.length !== name.next + 2 + 2 * n) return undefined;
  const infos: number[] = [];
  for (let i = 0; i < n; i++) infos.push(data.readUInt16BE(name.next + 2 + 2 * i));
  return { name: name.value, infos };
}

/** NBD_OPT_{LIST,SET}_META_CONTEXT data: name, query count, queries. Undefined = invalid. */
export function parseMetaContextData(
  data: Buffer,
): { readonly name: string; readonly queries: readonly string[] } | undefined {
  const name = prefixed(data, 0);
  if (!name || name.next + 4 > data.length) return undefined;
  const n = data.readUInt32BE(name.next);
  // Each query takes at least its 4-byte length: a count the data cannot hold is invalid.
  if (n > (data.length - name.next - 4) / 4) return undefined;
  const queries: string[] = [];
  let at = name.next + 4;
  for (let i = 0; i < n; i++) {
    const q = prefixed(data, at);
    if (!q) return undefined;
    queries.push(q.value);
    at = q.next;
  }
  return at === data.length ? { name: name.value, queries } : undefined;
}

/** NBD_OPT_EXPORT_NAME data: the whole payload is the name. */
export function parseExportName(data: Buffer): string | undefined {
  return nbdString(data);
}

export function encodeInfoExport(size: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(NBD_INFO_EXPORT, 0);
  b.writeBigUInt64BE(BigInt(size), 2);
  b.writeUInt16BE(flags, 10);
  return b;
}

export function encodeInfoBlockSize(min: number, preferred: number, max: number): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 0);
  b.writeUInt32BE(min, 2);
  b.writeUInt32BE(preferred, 6);
  b.writeUInt32BE(max, 10);
  return b;
}

export function encodeInfoText(type: number, text: string): Buffer {
  const t = Buffer.from(text, 'utf8').subarray(0, NBD_MAX_STRING_BYTES);
  const b = Buffer.alloc(2 + t.length);
  b.writeUInt16BE(type, 0);
  t.copy(b, 2);
  return b;
}

/** NBD_REP_SERVER payload: name length, name, then a human-readable description. */
export function encodeRepServer(name: string, description = ''): Buffer {
  const n = Buffer.from(name, 'utf8');
  const d = Buffer.from(description, 'utf8').subarray(0, NBD_MAX_STRING_BYTES);
  const b = Buffer.alloc(4 + n.length + d.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  d.copy(b, 4 + n.length);
  return b;
}

export function encodeRepMetaContext(id: number, name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(4 + n.length);
  b.writeUInt32BE(id, 0);
  n.copy(b, 4);
  return b;
}

/** The reply to NBD_OPT_EXPORT_NAME: size, transmission flags, 124 zeros unless NO_ZEROES. */
export function encodeExportNameReply(size: number, flags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(noZeroes ? 10 : 134);
  b.writeBigUInt64BE(BigInt(size), 0);
  b.writeUInt16BE(flags, 8);
  return b;
}

// ── Transmission ────────────────────────────────────────────────────────────────────
export interface NbdRequest {
  readonly flags: number;
  readonly type: number;
  /** The 8 cookie bytes, echoed in every reply (never interpreted). */
  readonly cookie: Buffer;
  /** −1 when the 64-bit offset exceeds 2^53 (then it is outside any export). */
  readonly offset: number;
  readonly length: number;
}

/** The 28-byte request header; a wrong magic means the stream is out of sync: hard disconnect. */
export function parseRequest(buf: Buffer): NbdRequest {
  if (buf.length !== REQUEST_BYTES || buf.readUInt32BE(0) !== NBD_REQUEST_MAGIC)
    reject('NBD request has a wrong magic');
  const off = buf.readBigUInt64BE(16);
  return {
    flags: buf.readUInt16BE(4),
    type: buf.readUInt16BE(6),
    cookie: Buffer.from(buf.subarray(8, 16)),
    offset: off > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(off),
    length: buf.readUInt32BE(24),
  };
}

/** True when [offset, offset+length) is a non-empty range inside an export of `size` bytes. */
export function insideExport(offset: number, length: number, size: number): boolean {
  return offset >= 0 && length > 0 && offset + length <= size;
}

export function encodeSimpleReply(errno: number, cookie: Buffer): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(errno, 4);
  cookie.copy(b, 8);
  return b;
}

/** A structured chunk header (20 bytes) followed by `extra` bytes reserved for the payload start. */
function chunk(flags: number, type: number, cookie: Buffer, length: number, extra: number): Buffer {
  const b = Buffer.alloc(20 + extra);
  b.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  cookie.copy(b, 8);
  b.writeUInt32BE(length, 16);
  return b;
}

export function encodeChunkNone(flags: number, cookie: Buffer): Buffer {
  return chunk(flags, 0, cookie, 0, 0);
}

/** OFFSET_DATA header and offset (28 bytes); the `dataLength` bytes of data follow. */
export function encodeDataChunkHead(
  flags: number,
  cookie: Buffer,
  offset: number,
  dataLength: number,
): Buffer {
  const b = chunk(flags, NBD_REPLY_TYPE_OFFSET_DATA, cookie, 8 + dataLength, 8);
  b.writeBigUInt64BE(BigInt(offset), 20);
  return b;
}

export function encodeHoleChunk(flags: number, cookie: Buffer, offset: number, size: number): Buffer {
  const b = chunk(flags, NBD_REPLY_TYPE_OFFSET_HOLE, cookie, 12, 12);
  b.writeBigUInt64BE(BigInt(offset), 20);
  b.writeUInt32BE(size, 28);
  return b;
}

export function encodeErrorChunk(flags: number, cookie: Buffer, errno: number, message: string): Buffer {
  // The message length field is 16 bits, and strings are capped at 4096 bytes anyway.
  const m = Buffer.from(message, 'utf8').subarray(0, NBD_MAX_STRING_BYTES);
  const b = chunk(flags, NBD_REPLY_TYPE_ERROR, cookie, 6 + m.length, 6 + m.length);
  b.writeUInt32BE(errno, 20);
  b.writeUInt16BE(m.length, 24);
  m.copy(b, 26);
  return b;
}

export interface StatusDescriptor {
  readonly length: number;
  readonly flags: number;
}

export function encodeBlockStatusChunk(
  flags: number,
  cookie: Buffer,
  contextId: number,
  descriptors: readonly StatusDescriptor[],
): Buffer {
  const n = descriptors.length;
  const b = chunk(flags, NBD_REPLY_TYPE_BLOCK_STATUS, cookie, 4 + 8 * n, 4 + 8 * n);
  b.writeUInt32BE(contextId, 20);
  descriptors.forEach((d, i) => {
    b.writeUInt32BE(d.length, 24 + 8 * i);
    b.writeUInt32BE(d.flags, 28 + 8 * i);
  });
  return b;
}
