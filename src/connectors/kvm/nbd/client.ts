/**
 * An NBD client for the transmission phase (spec "Transmission"): NBD_CMD_READ and
 * NBD_CMD_BLOCK_STATUS pipelined over one connection, matched to replies by cookie, with
 * a bounded number in flight. Every reply is checked against the request it answers
 * (wire.ts); any violation, an unknown cookie, a timeout or a dropped connection fails
 * the whole connection, because the byte stream can no longer be trusted to be in step.
 */
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { checkRead } from '../../../disk/index.js';
import {
  AbortedError,
  type FerryError,
  InvalidArgumentError,
  NbdDisconnectedError,
  NbdProtocolError,
  NbdRequestFailedError,
  NbdTimeoutError,
  NbdTooLargeError,
} from '../../../errors/index.js';
import { negotiate, type HandshakeOptions, type NbdExportInfo } from './handshake.js';
import {
  DEFAULT_MAX_IN_FLIGHT,
  MAX_BLOCK_STATUS_LENGTH,
  MAX_READ_CHUNKS,
  MAX_REQUEST_PAYLOAD,
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_DISC,
  NBD_CMD_READ,
  NBD_ERRNO_NAMES,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
} from './protocol.js';
import { StreamReader } from './reader.js';
import {
  checkChunkLength,
  checkTiled,
  encodeRequest,
  parseBlockStatus,
  parseDataChunkOffset,
  parseErrorChunk,
  parseHoleChunk,
  parseReplyHeader,
  replyHeaderBytes,
  type ChunkPlacement,
  type ErrorChunk,
  type NbdExtent,
} from './wire.js';

/** Default handshake timeout (connect + negotiation). */
export const DEFAULT_NBD_CONNECT_TIMEOUT_MS = 30_000;
/**
 * Default time one request may stay unanswered: 120 s. A 32 MiB read over a slow link
 * takes seconds; a server silent for two minutes is stuck, and waiting longer only hides it.
 */
export const DEFAULT_NBD_REQUEST_TIMEOUT_MS = 120_000;
const ESHUTDOWN = 108;

export type NbdEndpoint = { readonly path: string } | { readonly host: string; readonly port: number };

export interface NbdClientOptions extends HandshakeOptions {
  readonly connectTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /** Requests in flight at once (default 16); further requests wait for a slot. */
  readonly maxInFlight?: number;
  readonly signal?: AbortSignal;
}

interface Request {
  readonly type: number;
  readonly offset: number;
  readonly length: number;
  /** READ: where the bytes go (exactly `length` bytes). */
  readonly buf?: Buffer;
  readonly placed: ChunkPlacement[];
  readonly statuses: Map<number, NbdExtent[]>;
  error?: ErrorChunk;
  readonly resolve: () => void;
  readonly reject: (e: FerryError) => void;
  readonly timer: NodeJS.Timeout;
}

const endpointName = (e: NbdEndpoint) => ('path' in e ? e.path : `${e.host}:${e.port}`);

export class NbdClient {
  readonly info: NbdExportInfo;
  /** Endpoint and export, for messages. */
  readonly name: string;
  readonly #socket: Duplex;
  readonly #reader: StreamReader;
  readonly #requestTimeoutMs: number;
  readonly #maxInFlight: number;
  readonly #maxPayload: number;
  readonly #contextNames: ReadonlyMap<number, string>;
  readonly #pending = new Map<number, Request>();
  readonly #slotWaiters: (() => void)[] = [];
  readonly #idleWaiters: (() => void)[] = [];
  /** Requests sent and not yet answered. */
  #inFlight = 0;
  /** Requests made (waiting for a slot or in flight); close() waits for none. */
  #active = 0;
  #closing = false;
  readonly #closed: Promise<void>;
  #nextCookie = 1;
  #failure: FerryError | undefined;

  private constructor(
    socket: Duplex,
    reader: StreamReader,
    info: NbdExportInfo,
    name: string,
    o: NbdClientOptions,
  ) {
    this.#socket = socket;
    this.#reader = reader;
    this.info = info;
    this.name = name;
    this.#requestTimeoutMs = o.requestTimeoutMs ?? DEFAULT_NBD_REQUEST_TIMEOUT_MS;
    this.#maxInFlight = Math.max(1, Math.min(o.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT, 1024));
    const max = Math.min(info.maxBlockSize, MAX_REQUEST_PAYLOAD);
    this.#maxPayload = Math.max(info.minBlockSize, max - (max % info.minBlockSize));
    this.#contextNames = new Map([...info.contexts].map(([n, id]) => [id, n]));
    this.#closed = whenClosed(socket);
    void this.#replyLoop();
  }

  /** Connects (unix socket or TCP), negotiates and returns a client ready for requests. */
  static connect(endpoint: NbdEndpoint, options: NbdClientOptions): Promise<NbdClient> {
    const socket = connect('path' in endpoint ? { path: endpoint.path } : endpoint);
    socket.setNoDelay?.(true);
    return NbdClient.open(socket, endpointName(endpoint), options);
  }

  /** Negotiates over an already-created stream (a connecting socket, a test pair). */
  static async open(socket: Duplex, endpoint: string, options: NbdClientOptions): Promise<NbdClient> {
    const name = `${endpoint} export "${options.exportName}"`;
    const reader = new StreamReader(socket, (cause) => disconnected(name, cause));
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_NBD_CONNECT_TIMEOUT_MS;
    const timer = setTimeout(
      () =>
        reader.fail(
          new NbdTimeoutError(`NBD handshake with ${name} did not finish in ${timeoutMs} ms`, { timeoutMs }),
        ),
      timeoutMs,
    );
    const onAbort = () => reader.fail(new AbortedError('connecting to the NBD server was cancelled'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    try {
      const info = await negotiate(reader, socket, options);
      return new NbdClient(socket, reader, info, name, options);
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  get size(): number {
    return this.info.size;
  }

  /** True once the connection failed or was closed. */
  get closed(): boolean {
    return this.#failure !== undefined;
  }

  /**
   * Exactly `length` bytes at `offset` (strict, like a ByteSource: the range must lie inside
   * the export). Split into requests of at most the server's maximum block size (≤ 32 MiB)
   * that run in parallel; widened to the server's minimum block size when unaligned.
   */
  async read(offset: number, length: number): Promise<Buffer> {
    checkRead(this.name, this.size, offset, length);
    if (length === 0) return Buffer.alloc(0);
    const align = this.info.minBlockSize;
    const start = offset - (offset % align);
    const end = Math.min(this.size, Math.ceil((offset + length) / align) * align);
    const out = Buffer.allocUnsafe(end - start);
    const parts: Promise<void>[] = [];
    for (let at = start; at < end; at += this.#maxPayload) {
      const n = Math.min(this.#maxPayload, end - at);
      parts.push(this.#request(NBD_CMD_READ, at, n, out.subarray(at - start, at - start + n)));
    }
    await settleAll(parts);
    return start === offset && end === offset + length
      ? out
      : out.subarray(offset - start, offset - start + length);
  }

  /**
   * One NBD_CMD_BLOCK_STATUS: extents for every negotiated context, keyed by context name,
   * each starting at `offset` and covering at most `length` bytes (servers may answer
   * shorter). `length` ≤ MAX_BLOCK_STATUS_LENGTH. extents.ts `queryExtents()` covers a whole range.
   */
  async blockStatus(offset: number, length: number): Promise<ReadonlyMap<string, NbdExtent[]>> {
    if (this.info.contexts.size === 0) {
      throw new InvalidArgumentError('block status needs a metadata context selected at connect', {
        export: this.name,
      });
    }
    checkRange(this.name, this.size, offset, length);
    if (length === 0 || length > MAX_BLOCK_STATUS_LENGTH) {
      throw new InvalidArgumentError(`block status length must be in 1..${MAX_BLOCK_STATUS_LENGTH}`, {
        length,
      });
    }
    const statuses = new Map<number, NbdExtent[]>();
    await this.#request(NBD_CMD_BLOCK_STATUS, offset, length, undefined, statuses);
    const out = new Map<string, NbdExtent[]>();
    for (const [id, list] of statuses) out.set(this.#contextNames.get(id) as string, list);
    return out;
  }

  /** Soft disconnect: waits for requests already made, sends NBD_CMD_DISC and closes the socket. */
  async close(): Promise<void> {
    while (this.#active > 0 && !this.#failure) await new Promise<void>((r) => this.#idleWaiters.push(r));
    if (!this.#failure) {
      this.#closing = true;
      this.#failure = new NbdDisconnectedError(`NBD connection to ${this.name} was closed`, {
        export: this.name,
      });
      this.#reader.fail(this.#failure);
      this.#socket.write(encodeRequest(NBD_CMD_DISC, 0, this.#nextCookie++, 0, 0));
      this.#socket.end();
    }
    const timer = setTimeout(() => this.#socket.destroy(), 2000);
    await this.#closed;
    clearTimeout(timer);
  }

  async #request(
    type: number,
    offset: number,
    length: number,
    buf?: Buffer,
    statuses = new Map<number, NbdExtent[]>(),
  ): Promise<void> {
    this.#active++;
    try {
      while (this.#inFlight >= this.#maxInFlight && !this.#failure) {
        await new Promise<void>((r) => this.#slotWaiters.push(r));
      }
      if (this.#failure) throw this.#failure;
      this.#inFlight++;
      try {
        await this.#send(type, offset, length, buf, statuses);
      } finally {
        this.#inFlight--;
        this.#slotWaiters.shift()?.();
      }
    } finally {
      if (--this.#active === 0) for (const w of this.#idleWaiters.splice(0)) w();
    }
  }

  #send(
    type: number,
    offset: number,
    length: number,
    buf: Buffer | undefined,
    statuses: Map<number, NbdExtent[]>,
  ) {
    const cookie = this.#nextCookie++;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(
          new NbdTimeoutError(`NBD server ${this.name} did not answer within ${this.#requestTimeoutMs} ms`, {
            offset,
            length,
            timeoutMs: this.#requestTimeoutMs,
          }),
        );
      }, this.#requestTimeoutMs);
      const req: Request = {
        type,
        offset,
        length,
        placed: [],
        statuses,
        resolve,
        reject,
        timer,
        ...(buf ? { buf } : {}),
      };
      this.#pending.set(cookie, req);
      this.#socket.write(encodeRequest(type, 0, cookie, offset, length));
    });
  }

  async #replyLoop(): Promise<void> {
    try {
      for (;;) {
        const magic = await this.#reader.read(4);
        const rest = await this.#reader.read(replyHeaderBytes(magic.readUInt32BE(0)) - 4);
        const head = parseReplyHeader(Buffer.concat([magic, rest]));
        const req = this.#pending.get(head.cookie);
        if (!req)
          throw new NbdProtocolError('NBD server answered a cookie that is not in flight', {
            cookie: head.cookie,
          });
        if (head.kind === 'simple') await this.#simpleReply(head.cookie, req, head.errno);
        else await this.#chunk(head.cookie, req, head);
      }
    } catch (err) {
      this.#fail(err as FerryError);
      // After our own NBD_CMD_DISC the socket is ending in order; anything else is a hard disconnect.
      if (!this.#closing) this.#socket.destroy();
    }
  }

  async #simpleReply(cookie: number, req: Request, errno: number): Promise<void> {
    if (errno !== 0) return this.#finish(cookie, req, { errno, message: '' });
    if (req.type !== NBD_CMD_READ || this.info.structuredReplies) {
      // Spec: with structured replies a READ never gets a simple reply; block status never does.
      throw new NbdProtocolError('NBD server sent a simple reply where a structured one is required', {
        cookie,
      });
    }
    await this.#reader.readInto(req.buf as Buffer, 0, req.length);
    req.placed.push({ offset: req.offset, length: req.length });
    this.#finish(cookie, req);
  }

  async #chunk(
    cookie: number,
    req: Request,
    head: { readonly flags: number; readonly type: number; readonly length: number },
  ): Promise<void> {
    if (!this.info.structuredReplies)
      throw new NbdProtocolError('NBD server sent a structured reply that was not negotiated', {});
    const isRead = req.type === NBD_CMD_READ;
    checkChunkLength(head.type, head.length, req, isRead);
    if (head.type === NBD_REPLY_TYPE_OFFSET_DATA) {
      const at = parseDataChunkOffset(await this.#reader.read(8), head.length, req);
      await this.#reader.readInto(req.buf as Buffer, at.offset - req.offset, at.length);
      this.#place(req, at);
    } else if (head.type === NBD_REPLY_TYPE_OFFSET_HOLE) {
      const at = parseHoleChunk(await this.#reader.read(head.length), req);
      (req.buf as Buffer).fill(0, at.offset - req.offset, at.offset - req.offset + at.length);
      this.#place(req, at);
    } else if (head.type === NBD_REPLY_TYPE_BLOCK_STATUS) {
      const { contextId, extents } = parseBlockStatus(await this.#reader.read(head.length), req);
      if (!this.#contextNames.has(contextId) || req.statuses.has(contextId)) {
        throw new NbdProtocolError('NBD block status for an unknown or repeated context id', { contextId });
      }
      req.statuses.set(contextId, extents);
    } else if (head.type !== NBD_REPLY_TYPE_NONE) {
      // Error chunk (known or unknown error type): keep the first, finish at DONE.
      req.error ??= parseErrorChunk(head.type, await this.#reader.read(head.length), req);
    }
    if (head.flags & NBD_REPLY_FLAG_DONE) this.#finish(cookie, req, req.error);
  }

  #place(req: Request, at: ChunkPlacement): void {
    if (req.placed.length >= MAX_READ_CHUNKS) {
      throw new NbdTooLargeError(`NBD read reply in more than ${MAX_READ_CHUNKS} chunks`, {
        limit: MAX_READ_CHUNKS,
      });
    }
    req.placed.push(at);
  }

  #finish(cookie: number, req: Request, error?: ErrorChunk): void {
    if (!error && req.type === NBD_CMD_READ) {
      checkTiled(req.placed, req);
    }
    this.#pending.delete(cookie);
    clearTimeout(req.timer);
    if (!error) return req.resolve();
    const errName = NBD_ERRNO_NAMES[error.errno] ?? `errno ${error.errno}`;
    // Not `message`: a details object with a string `message` looks like an error to
    // pino's serializer, which then tags it, and details are frozen (a logged run failure
    // crashed the server).
    req.reject(
      new NbdRequestFailedError(
        `NBD server ${this.name} failed ${req.type === NBD_CMD_READ ? 'a read' : 'a block-status request'} at ${error.offset ?? req.offset}: ${errName}${error.message ? ` (${error.message})` : ''}`,
        {
          errno: errName,
          offset: error.offset ?? req.offset,
          length: req.length,
          serverMessage: error.message,
        },
      ),
    );
    // Spec: a client that receives ESHUTDOWN must disconnect (softly).
    if (error.errno === ESHUTDOWN) setImmediate(() => void this.close());
  }

  #fail(err: FerryError): void {
    this.#failure ??= err;
    this.#reader.fail(this.#failure);
    for (const r of this.#pending.values()) {
      clearTimeout(r.timer);
      r.reject(this.#failure);
    }
    this.#pending.clear();
    for (const w of this.#slotWaiters.splice(0)) w();
  }
}

/** Resolves when the stream has closed (at once if it already has). */
function whenClosed(stream: Duplex): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

function disconnected(name: string, cause?: Error): FerryError {
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new NbdDisconnectedError(
    cause
      ? `cannot talk to NBD server ${name}: ${cause.message}`
      : `NBD server ${name} closed the connection`,
    { export: name, ...(errno ? { errno } : {}) },
    { cause },
  );
}

function checkRange(name: string, size: number, offset: number, length: number): void {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > size
  ) {
    throw new InvalidArgumentError(
      `${name}: range ${offset}+${length} is outside the export (${size} bytes)`,
      {
        offset,
        length,
        size,
      },
    );
  }
}

/** Waits for every promise, then rethrows the first rejection (no request left running unobserved). */
async function settleAll(parts: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(parts);
  const bad = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (bad) throw bad.reason;
}
