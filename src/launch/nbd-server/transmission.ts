/**
 * NBD transmission phase for a read-only export (spec "Transmission", "Request types"):
 * READ (simple or structured replies; holes as NBD_REPLY_TYPE_OFFSET_HOLE), BLOCK_STATUS
 * for base:allocation, FLUSH (a no-op: nothing is ever written), DISC. Writes and trims get
 * EPERM, unknown commands and flags EINVAL, ranges outside the export EINVAL.
 *
 * Requests are served concurrently, at most `maxInFlight` at once and at most
 * MAX_IN_FLIGHT_BYTES of read replies not yet handed to the kernel: beyond that the loop
 * stops reading requests, so a client that floods requests or never reads its replies
 * stalls itself, not the server. A request counts until its reply left the process.
 */
import type { Socket } from 'node:net';
import type { Disk } from '../../disk/index.js';
import { FerryError, NbdClientRejectedError } from '../../errors/index.js';
import type { Negotiated } from './handshake.js';
import {
  BASE_ALLOCATION_ID,
  EINVAL,
  EIO,
  EPERM,
  MAX_BLOCK_STATUS_EXTENTS,
  MAX_IN_FLIGHT_BYTES,
  MAX_REQUEST_BYTES,
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_REPLY_FLAG_DONE,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
  REQUEST_BYTES,
} from './protocol.js';
import type { ClientReader } from './reader.js';
import {
  encodeBlockStatusChunk,
  encodeDataChunkHead,
  encodeErrorChunk,
  encodeHoleChunk,
  encodeSimpleReply,
  insideExport,
  parseRequest,
  type NbdRequest,
  type StatusDescriptor,
} from './wire.js';

/**
 * Holes shorter than this are sent as data (zeros): a chunk header costs 20–32 bytes and a
 * client call, so tiny holes are not worth a chunk. Replies with more pieces than
 * MAX_READ_PIECES are sent as one data chunk (bounds chunks per reply).
 */
const MIN_HOLE_BYTES = 4096;
const MAX_READ_PIECES = 1024;

/** Counters a server reports (all connections). */
export interface TransmissionStats {
  requests: number;
  bytesRead: number;
  errors: number;
}

export interface TransmissionContext {
  readonly socket: Socket;
  readonly reader: ClientReader;
  readonly negotiated: Negotiated;
  readonly maxInFlight: number;
  readonly stats: TransmissionStats;
  /** A read or block-status failed in the disk (the client got EIO). */
  readonly onDiskError: (err: unknown) => void;
}

interface Piece {
  readonly offset: number;
  readonly length: number;
  readonly hole: boolean;
}

/** Writes buffers in order; resolves when the last one was handed to the kernel (or the socket died). */
function send(socket: Socket, bufs: readonly Buffer[]): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed || bufs.length === 0) return resolve();
    bufs.forEach((b, i) => socket.write(b, i === bufs.length - 1 ? () => resolve() : undefined));
  });
}

/** Data/hole pieces of a range from the disk's map; tiny holes fold into data. */
async function readPieces(disk: Disk, offset: number, length: number): Promise<Piece[]> {
  const raw: Piece[] = [];
  for await (const e of disk.map(offset, length)) {
    push(raw, { offset: e.offset, length: e.length, hole: e.kind === 'zero' || e.kind === 'unallocated' });
  }
  const out: Piece[] = [];
  for (const p of raw) push(out, p.hole && p.length < MIN_HOLE_BYTES ? { ...p, hole: false } : p);
  return out.length > MAX_READ_PIECES ? [{ offset, length, hole: false }] : out;
}

function push(out: Piece[], p: Piece): void {
  const last = out[out.length - 1];
  if (last && last.hole === p.hole && last.offset + last.length === p.offset) {
    out[out.length - 1] = { ...last, length: last.length + p.length };
  } else out.push(p);
}

function errorMessage(err: unknown): string {
  if (FerryError.is(err)) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

class Connection {
  readonly #ctx: TransmissionContext;
  readonly #disk: Disk;
  readonly #size: number;

  constructor(ctx: TransmissionContext) {
    this.#ctx = ctx;
    this.#disk = ctx.negotiated.export.disk;
    this.#size = this.#disk.virtualSize;
  }

  #error(req: NbdRequest, errno: number, message: string): Promise<void> {
    const reply = this.#ctx.negotiated.structured
      ? encodeErrorChunk(NBD_REPLY_FLAG_DONE, req.cookie, errno, message)
      : encodeSimpleReply(errno, req.cookie);
    return send(this.#ctx.socket, [reply]);
  }

  /** Serves one request; never rejects (every failure becomes an error reply). */
  async handle(req: NbdRequest): Promise<void> {
    this.#ctx.stats.requests++;
    try {
      await this.#dispatch(req);
    } catch (err) {
      this.#ctx.stats.errors++;
      this.#ctx.onDiskError(err);
      await this.#error(req, EIO, errorMessage(err));
    }
  }

  async #dispatch(req: NbdRequest): Promise<void> {
    const { structured, baseAllocation } = this.#ctx.negotiated;
    switch (req.type) {
      case NBD_CMD_READ: {
        // FUA is meaningless on a read but some clients set it; DF only when advertised.
        if (req.flags & ~(NBD_CMD_FLAG_FUA | (structured ? NBD_CMD_FLAG_DF : 0)))
          return this.#error(req, EINVAL, 'unsupported flags for NBD_CMD_READ');
        if (req.length > MAX_REQUEST_BYTES)
          return this.#error(req, EINVAL, `reads are limited to ${MAX_REQUEST_BYTES} bytes`);
        if (!insideExport(req.offset, req.length, this.#size))
          return this.#error(req, EINVAL, 'read outside the export');
        await (structured ? this.#readStructured(req) : this.#readSimple(req));
        this.#ctx.stats.bytesRead += req.length;
        return;
      }
      case NBD_CMD_FLUSH:
        if (req.flags & ~NBD_CMD_FLAG_FUA)
          return this.#error(req, EINVAL, 'unsupported flags for NBD_CMD_FLUSH');
        return send(this.#ctx.socket, [encodeSimpleReply(0, req.cookie)]);
      case NBD_CMD_WRITE:
      case NBD_CMD_TRIM:
      case NBD_CMD_WRITE_ZEROES:
        return this.#error(req, EPERM, 'the export is read-only');
      case NBD_CMD_BLOCK_STATUS:
        if (!baseAllocation) return this.#error(req, EINVAL, 'no metadata context was selected');
        if (req.flags & ~(NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE))
          return this.#error(req, EINVAL, 'unsupported flags for NBD_CMD_BLOCK_STATUS');
        if (!insideExport(req.offset, req.length, this.#size))
          return this.#error(req, EINVAL, 'block status outside the export');
        return this.#blockStatus(req);
      default:
        return this.#error(req, EINVAL, `unknown command ${req.type}`);
    }
  }

  async #readSimple(req: NbdRequest): Promise<void> {
    // Read everything before the header: an error can then still be reported cleanly.
    const data = await this.#disk.read(req.offset, req.length);
    await send(this.#ctx.socket, [encodeSimpleReply(0, req.cookie), data]);
  }

  async #readStructured(req: NbdRequest): Promise<void> {
    const { cookie } = req;
    let pieces = await readPieces(this.#disk, req.offset, req.length);
    if (req.flags & NBD_CMD_FLAG_DF && pieces.length > 1)
      pieces = [{ offset: req.offset, length: req.length, hole: false }];
    // All data is read before the first chunk goes out, so the final chunk may carry DONE
    // and a failure is one error chunk (spec: DONE only when no error can follow). One read
    // of the whole range: the image layer batches its chunk fetches and returns zeros for
    // zero blocks without fetching anything.
    const all = pieces.some((p) => !p.hole) ? await this.#disk.read(req.offset, req.length) : undefined;
    const out: Buffer[] = [];
    pieces.forEach((p, i) => {
      const flags = i === pieces.length - 1 ? NBD_REPLY_FLAG_DONE : 0;
      if (p.hole || !all) out.push(encodeHoleChunk(flags, cookie, p.offset, p.length));
      else {
        const at = p.offset - req.offset;
        out.push(encodeDataChunkHead(flags, cookie, p.offset, p.length), all.subarray(at, at + p.length));
      }
    });
    await send(this.#ctx.socket, out);
  }

  async #blockStatus(req: NbdRequest): Promise<void> {
    const max = req.flags & NBD_CMD_FLAG_REQ_ONE ? 1 : MAX_BLOCK_STATUS_EXTENTS;
    const out: StatusDescriptor[] = [];
    for await (const e of this.#disk.map(req.offset, req.length)) {
      const flags = e.kind === 'zero' || e.kind === 'unallocated' ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0;
      const last = out[out.length - 1];
      if (last && last.flags === flags) out[out.length - 1] = { flags, length: last.length + e.length };
      else if (out.length === max) break;
      else out.push({ flags, length: e.length });
    }
    const chunk = encodeBlockStatusChunk(NBD_REPLY_FLAG_DONE, req.cookie, BASE_ALLOCATION_ID, out);
    await send(this.#ctx.socket, [chunk]);
  }
}

/**
 * Reads and serves requests until NBD_CMD_DISC (resolves after the in-flight replies were
 * sent) or until the stream breaks (rejects: ClientGone, or FERRY_NBD_CLIENT_REJECTED).
 */
export async function serveTransmission(ctx: TransmissionContext): Promise<void> {
  const conn = new Connection(ctx);
  const inFlight = new Set<Promise<void>>();
  let bytes = 0;
  try {
    for (;;) {
      const req = parseRequest(await ctx.reader.read(REQUEST_BYTES));
      if (req.type === NBD_CMD_DISC) return;
      if (req.type === NBD_CMD_WRITE) {
        // The payload follows the header; skip it to stay in sync, unless it is too big to.
        if (req.length > MAX_REQUEST_BYTES) {
          throw new NbdClientRejectedError(`NBD write payload of ${req.length} bytes exceeds the limit`, {
            length: req.length,
            limit: MAX_REQUEST_BYTES,
          });
        }
        await ctx.reader.skip(req.length);
      }
      const cost = req.type === NBD_CMD_READ ? Math.min(req.length, MAX_REQUEST_BYTES) : 0;
      while (inFlight.size >= ctx.maxInFlight || (inFlight.size > 0 && bytes + cost > MAX_IN_FLIGHT_BYTES)) {
        await Promise.race(inFlight);
      }
      bytes += cost;
      const served: Promise<void> = conn.handle(req).finally(() => {
        inFlight.delete(served);
        bytes -= cost;
      });
      inFlight.add(served);
    }
  } finally {
    await Promise.allSettled(inFlight);
  }
}
