/**
 * The server side of NBD fixed-newstyle negotiation (spec "Fixed newstyle negotiation",
 * "Option types"): greeting, client flags, then options until the client picks an export
 * (NBD_OPT_GO or NBD_OPT_EXPORT_NAME) or leaves (NBD_OPT_ABORT).
 *
 * Supported: EXPORT_NAME, ABORT, LIST, INFO, GO (NBD_INFO_EXPORT, _NAME, _DESCRIPTION,
 * _BLOCK_SIZE), STRUCTURED_REPLY, LIST_META_CONTEXT and SET_META_CONTEXT with
 * `base:allocation`. Everything else (STARTTLS, extended headers, …) gets
 * NBD_REP_ERR_UNSUP, which the spec lets every client handle. Malformed options get
 * NBD_REP_ERR_INVALID; only what makes the stream unreadable (wrong magic, an option
 * longer than MAX_OPTION_BYTES, unknown client flags, too many options) closes the
 * connection.
 */
import type { Disk } from '../../disk/index.js';
import { NbdClientRejectedError } from '../../errors/index.js';
import {
  BASE_ALLOCATION_ID,
  CONTEXT_BASE_ALLOCATION,
  MAX_OPTIONS,
  MAX_REQUEST_BYTES,
  MIN_BLOCK_SIZE,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FLUSH,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_NAME,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_SHUTDOWN,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
  PREFERRED_BLOCK_SIZE,
} from './protocol.js';
import type { ClientReader } from './reader.js';
import {
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoText,
  encodeOptionReply,
  encodeRepMetaContext,
  encodeRepServer,
  parseClientFlags,
  parseExportName,
  parseGoData,
  parseMetaContextData,
  parseOptionHeader,
} from './wire.js';

/** One export: a name clients ask for, and the disk it serves read-only. */
export interface NbdExport {
  readonly name: string;
  readonly disk: Disk;
  /** Shown by NBD_OPT_LIST and NBD_INFO_DESCRIPTION. */
  readonly description?: string;
}

/** What the handshake settled. */
export interface Negotiated {
  readonly export: NbdExport;
  readonly structured: boolean;
  /** base:allocation was selected for this export: BLOCK_STATUS is allowed. */
  readonly baseAllocation: boolean;
  readonly transmissionFlags: number;
}

export interface HandshakeContext {
  readonly reader: ClientReader;
  readonly write: (buf: Buffer) => void;
  /** Resolves when the client has read enough of the replies written so far. */
  readonly drained: () => Promise<void>;
  /** The export a name selects; "" selects the only export of a one-export server. */
  readonly lookup: (name: string) => NbdExport | undefined;
  readonly exports: () => readonly NbdExport[];
  readonly shuttingDown: () => boolean;
}

export function transmissionFlags(structured: boolean): number {
  // Read-only with no cache: several connections see the same bytes (CAN_MULTI_CONN);
  // FLUSH is advertised (and a no-op) because some clients flush unconditionally.
  return (
    NBD_FLAG_HAS_FLAGS |
    NBD_FLAG_READ_ONLY |
    NBD_FLAG_SEND_FLUSH |
    NBD_FLAG_CAN_MULTI_CONN |
    (structured ? NBD_FLAG_SEND_DF : 0)
  );
}

/** Which of this server's contexts a query names (spec: "base:" lists the base namespace). */
function matches(query: string, listing: boolean): boolean {
  return query === CONTEXT_BASE_ALLOCATION || (listing && query === 'base:');
}

/** Runs the handshake; resolves undefined when the client aborted (NBD_OPT_ABORT). */
export async function negotiate(ctx: HandshakeContext): Promise<Negotiated | undefined> {
  const { reader, write } = ctx;
  write(encodeGreeting());
  const { noZeroes } = parseClientFlags(await reader.read(4));
  let structured = false;
  let meta: { readonly exportName: string; readonly base: boolean } | undefined;

  for (let n = 0; ; n++) {
    if (n >= MAX_OPTIONS) {
      throw new NbdClientRejectedError(`NBD client sent more than ${MAX_OPTIONS} options`, {
        limit: MAX_OPTIONS,
      });
    }
    await ctx.drained();
    const { option, length } = parseOptionHeader(await reader.read(16));
    const data = await reader.read(length);
    const reply = (type: number, payload?: Buffer) => write(encodeOptionReply(option, type, payload));
    const error = (type: number, message: string) => reply(type, Buffer.from(message, 'utf8'));

    if (option === NBD_OPT_EXPORT_NAME) {
      // No way to say "no" to this option: an unknown name ends the session (spec).
      const name = parseExportName(data);
      const exp = name === undefined ? undefined : ctx.lookup(name);
      if (!exp || ctx.shuttingDown()) {
        throw new NbdClientRejectedError('NBD_OPT_EXPORT_NAME names no export', { export: name ?? '' });
      }
      const flags = transmissionFlags(structured);
      write(encodeExportNameReply(exp.disk.virtualSize, flags, noZeroes));
      return { export: exp, structured, baseAllocation: false, transmissionFlags: flags };
    }
    if (option === NBD_OPT_ABORT) {
      reply(NBD_REP_ACK);
      return undefined;
    }
    if (ctx.shuttingDown()) {
      error(NBD_REP_ERR_SHUTDOWN, 'the server is shutting down');
      continue;
    }
    switch (option) {
      case NBD_OPT_LIST: {
        if (length !== 0) {
          error(NBD_REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
          break;
        }
        for (const e of ctx.exports()) reply(NBD_REP_SERVER, encodeRepServer(e.name, e.description));
        reply(NBD_REP_ACK);
        break;
      }
      case NBD_OPT_STRUCTURED_REPLY: {
        if (length !== 0) {
          error(NBD_REP_ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
          break;
        }
        structured = true;
        reply(NBD_REP_ACK);
        break;
      }
      case NBD_OPT_LIST_META_CONTEXT:
      case NBD_OPT_SET_META_CONTEXT: {
        const listing = option === NBD_OPT_LIST_META_CONTEXT;
        const req = parseMetaContextData(data);
        if (!req) {
          error(NBD_REP_ERR_INVALID, 'malformed metadata context request');
          break;
        }
        if (!structured) {
          error(NBD_REP_ERR_INVALID, 'metadata contexts need structured replies first');
          break;
        }
        if (!ctx.lookup(req.name)) {
          error(NBD_REP_ERR_UNKNOWN, `no export named "${req.name}"`);
          break;
        }
        const base =
          listing && req.queries.length === 0 ? true : req.queries.some((q) => matches(q, listing));
        if (base)
          reply(
            NBD_REP_META_CONTEXT,
            encodeRepMetaContext(listing ? 0 : BASE_ALLOCATION_ID, CONTEXT_BASE_ALLOCATION),
          );
        // SET replaces the previous selection, even with an empty one (spec).
        if (!listing) meta = { exportName: req.name, base };
        reply(NBD_REP_ACK);
        break;
      }
      case NBD_OPT_INFO:
      case NBD_OPT_GO: {
        const req = parseGoData(data);
        if (!req) {
          error(NBD_REP_ERR_INVALID, 'malformed NBD_OPT_INFO/GO data');
          break;
        }
        const exp = ctx.lookup(req.name);
        if (!exp) {
          error(NBD_REP_ERR_UNKNOWN, `no export named "${req.name}"`);
          break;
        }
        const flags = transmissionFlags(structured);
        reply(NBD_REP_INFO, encodeInfoExport(exp.disk.virtualSize, flags));
        // Block sizes only when asked: min 1 accepts any alignment, so it is only a hint.
        if (req.infos.includes(NBD_INFO_BLOCK_SIZE))
          reply(NBD_REP_INFO, encodeInfoBlockSize(MIN_BLOCK_SIZE, PREFERRED_BLOCK_SIZE, MAX_REQUEST_BYTES));
        if (req.infos.includes(NBD_INFO_NAME)) reply(NBD_REP_INFO, encodeInfoText(NBD_INFO_NAME, exp.name));
        if (req.infos.includes(NBD_INFO_DESCRIPTION) && exp.description)
          reply(NBD_REP_INFO, encodeInfoText(NBD_INFO_DESCRIPTION, exp.description));
        reply(NBD_REP_ACK);
        if (option === NBD_OPT_INFO) break;
        // Contexts chosen for another export name do not apply to this one.
        const baseAllocation = structured && meta?.exportName === req.name && meta.base;
        return { export: exp, structured, baseAllocation, transmissionFlags: flags };
      }
      default:
        error(NBD_REP_ERR_UNSUP, `option ${option} is not supported`);
    }
  }
}
