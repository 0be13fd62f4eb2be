/**
 * The NBD fixed-newstyle handshake (spec "Fixed newstyle negotiation"): magic and flags,
 * NBD_OPT_STRUCTURED_REPLY, NBD_OPT_SET_META_CONTEXT for the contexts asked for, then
 * NBD_OPT_GO with NBD_INFO_BLOCK_SIZE. Oldstyle servers, servers without NBD_OPT_GO and
 * NBD_OPT_EXPORT_NAME-only negotiation are refused: every server that exports QEMU block
 * nodes (QEMU ≥ 2.10, nbdkit, nbd-server ≥ 3.15) supports the options used here.
 */
import type { Duplex } from 'node:stream';
import {
  NbdExportNotFoundError,
  NbdOptionRefusedError,
  NbdProtocolError,
  NbdTooLargeError,
  NbdUnsupportedError,
} from '../../../errors/index.js';
import { limits } from '../../../disk/index.js';
import {
  MAX_OPTION_REPLIES,
  NBD_CLISERV_MAGIC,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_MAGIC,
  NBD_OPT_GO,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_OPTS_MAGIC,
  NBD_REP_ACK,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  REP_ERROR_NAMES,
  isRepError,
} from './protocol.js';
import type { StreamReader } from './reader.js';
import {
  encodeGoData,
  encodeMetaContextData,
  encodeOption,
  parseInfo,
  parseMetaContext,
  parseOptionReplyHeader,
} from './wire.js';

/** What the handshake settled: the export and how to talk to it. */
export interface NbdExportInfo {
  readonly exportName: string;
  /** Size in bytes; every request stays inside it. */
  readonly size: number;
  /** Transmission flags (NBD_FLAG_READ_ONLY, NBD_FLAG_CAN_MULTI_CONN, …). */
  readonly flags: number;
  /** Block size constraints (spec defaults when the server sends none: 1 / 4096 / 32 MiB). */
  readonly minBlockSize: number;
  readonly preferredBlockSize: number;
  readonly maxBlockSize: number;
  readonly structuredReplies: boolean;
  /** Metadata context name → the id the server assigned it. */
  readonly contexts: ReadonlyMap<string, number>;
}

export interface HandshakeOptions {
  readonly exportName: string;
  /** Metadata contexts to select; every one must be granted. Default: none. */
  readonly metaContexts?: readonly string[];
}

interface Reply {
  readonly type: number;
  readonly payload: Buffer;
}

async function readReply(reader: StreamReader, option: number): Promise<Reply> {
  const head = parseOptionReplyHeader(await reader.read(20), option);
  return { type: head.type, payload: await reader.read(head.length) };
}

/** Turns an NBD_REP_ERR_* reply into the coded error for it. */
function optionError(option: string, reply: Reply, exportName: string): Error {
  const name = REP_ERROR_NAMES[reply.type] ?? `NBD_REP_ERR(${reply.type - 0x80000000})`;
  const text = reply.payload.subarray(0, 4096).toString('utf8');
  const details = { option, reply: name, exportName, ...(text ? { serverMessage: text } : {}) };
  const why = `${option}: ${name}${text ? ` (${text})` : ''}`;
  if (reply.type === NBD_REP_ERR_UNKNOWN)
    return new NbdExportNotFoundError(`NBD export "${exportName}" not found: ${why}`, details);
  if (reply.type === NBD_REP_ERR_UNSUP)
    return new NbdUnsupportedError(`NBD server does not support ${why}`, details);
  if (reply.type === NBD_REP_ERR_TLS_REQD)
    return new NbdUnsupportedError(`NBD server requires TLS: ${why}`, details);
  return new NbdOptionRefusedError(`NBD server refused ${why}`, details);
}

export async function negotiate(
  reader: StreamReader,
  socket: Duplex,
  options: HandshakeOptions,
): Promise<NbdExportInfo> {
  const head = await reader.read(18);
  if (head.readBigUInt64BE(0) !== NBD_MAGIC)
    throw new NbdProtocolError('not an NBD server (no NBDMAGIC)', {});
  const second = head.readBigUInt64BE(8);
  if (second === NBD_CLISERV_MAGIC) throw new NbdUnsupportedError('NBD server uses oldstyle negotiation', {});
  if (second !== NBD_OPTS_MAGIC) throw new NbdProtocolError('NBD server sent a wrong handshake magic', {});
  const hflags = head.readUInt16BE(16);
  if (!(hflags & NBD_FLAG_FIXED_NEWSTYLE)) {
    throw new NbdUnsupportedError('NBD server does not support fixed newstyle negotiation', {
      flags: hflags,
    });
  }
  const cflags = Buffer.alloc(4);
  cflags.writeUInt32BE(NBD_FLAG_C_FIXED_NEWSTYLE | (hflags & NBD_FLAG_NO_ZEROES ? NBD_FLAG_C_NO_ZEROES : 0));
  socket.write(cflags);

  const { exportName } = options;
  const wanted = [...new Set(options.metaContexts ?? [])];

  // Structured replies: needed for block status, and they make reads self-describing.
  socket.write(encodeOption(NBD_OPT_STRUCTURED_REPLY));
  const sr = await readReply(reader, NBD_OPT_STRUCTURED_REPLY);
  let structuredReplies = false;
  if (sr.type === NBD_REP_ACK) structuredReplies = true;
  else if (sr.type !== NBD_REP_ERR_UNSUP) {
    if (isRepError(sr.type)) throw optionError('NBD_OPT_STRUCTURED_REPLY', sr, exportName);
    throw new NbdProtocolError(`unexpected reply ${sr.type} to NBD_OPT_STRUCTURED_REPLY`, { reply: sr.type });
  }

  const contexts = new Map<string, number>();
  if (wanted.length > 0) {
    if (!structuredReplies) {
      throw new NbdUnsupportedError('NBD server has no structured replies, so no block status', {
        contexts: wanted.join(','),
      });
    }
    socket.write(encodeOption(NBD_OPT_SET_META_CONTEXT, encodeMetaContextData(exportName, wanted)));
    for (let n = 0; ; n++) {
      if (n > MAX_OPTION_REPLIES)
        throw new NbdTooLargeError('too many NBD option replies', { limit: MAX_OPTION_REPLIES });
      const r = await readReply(reader, NBD_OPT_SET_META_CONTEXT);
      if (r.type === NBD_REP_ACK) break;
      if (isRepError(r.type)) throw optionError('NBD_OPT_SET_META_CONTEXT', r, exportName);
      if (r.type !== NBD_REP_META_CONTEXT) {
        throw new NbdProtocolError(`unexpected reply ${r.type} to NBD_OPT_SET_META_CONTEXT`, {
          reply: r.type,
        });
      }
      const { id, name } = parseMetaContext(r.payload);
      if (!wanted.includes(name) || contexts.has(name)) {
        throw new NbdProtocolError(`NBD server selected a context that was not asked for: ${name}`, {
          context: name,
        });
      }
      contexts.set(name, id);
    }
    const missing = wanted.filter((c) => !contexts.has(c));
    if (missing.length > 0) {
      throw new NbdUnsupportedError(`NBD export "${exportName}" does not offer ${missing.join(', ')}`, {
        exportName,
        contexts: missing.join(','),
      });
    }
  }

  socket.write(encodeOption(NBD_OPT_GO, encodeGoData(exportName, [NBD_INFO_BLOCK_SIZE])));
  let size: number | undefined;
  let flags = 0;
  let block = { min: 1, preferred: 4096, max: 32 * 1024 * 1024 };
  for (let n = 0; ; n++) {
    if (n > MAX_OPTION_REPLIES)
      throw new NbdTooLargeError('too many NBD option replies', { limit: MAX_OPTION_REPLIES });
    const r = await readReply(reader, NBD_OPT_GO);
    if (r.type === NBD_REP_ACK) break;
    if (isRepError(r.type)) throw optionError('NBD_OPT_GO', r, exportName);
    if (r.type !== NBD_REP_INFO)
      throw new NbdProtocolError(`unexpected reply ${r.type} to NBD_OPT_GO`, { reply: r.type });
    const info = parseInfo(r.payload);
    if (info.kind === 'export') {
      size = info.size;
      flags = info.flags;
    } else if (info.kind === 'block-size') {
      block = { min: info.min, preferred: info.preferred, max: info.max };
    }
  }
  if (size === undefined)
    throw new NbdProtocolError('NBD server finished NBD_OPT_GO without NBD_INFO_EXPORT', {});
  if (!(flags & NBD_FLAG_HAS_FLAGS))
    throw new NbdProtocolError('NBD transmission flags lack NBD_FLAG_HAS_FLAGS', { flags });
  if (size > limits.MAX_VIRTUAL_SIZE) {
    throw new NbdTooLargeError(
      `NBD export of ${size} bytes exceeds the ${limits.MAX_VIRTUAL_SIZE}-byte disk limit`,
      {
        size,
        limit: limits.MAX_VIRTUAL_SIZE,
      },
    );
  }
  return Object.freeze({
    exportName,
    size,
    flags,
    minBlockSize: block.min,
    preferredBlockSize: block.preferred,
    maxBlockSize: block.max,
    structuredReplies,
    contexts,
  });
}
