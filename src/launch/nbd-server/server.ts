/**
 * A read-only NBD server on a unix socket: serves disk-engine `Disk`s (e.g. store images
 * from openImageDisk) by name, so QEMU reads an image in place — an instance's overlay
 * names `nbd+unix:///NAME?socket=PATH` as its backing file (docs/launch.md).
 *
 * Every client is untrusted: each connection runs in its own promise chain whose failure
 * (protocol violation, limit exceeded, timeout, client gone) closes that connection only,
 * and is reported through `onEvent`. Limits (protocol.ts): connections, handshake time,
 * option sizes and count, request sizes, requests and reply bytes in flight.
 *
 * The socket file is created 0600 (only the server's user — the one running QEMU — may
 * read the images) and removed by close().
 */
import { chmod, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { FerryError } from '../../errors/index.js';
import { InvalidArgumentError, IoError, NbdClientRejectedError, toFerryError } from '../../errors/index.js';
import { negotiate, type NbdExport } from './handshake.js';
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_IN_FLIGHT,
  MAX_SOCKET_PATH_BYTES,
  NBD_MAX_STRING_BYTES,
} from './protocol.js';
import { ClientGone, ClientReader } from './reader.js';
import { serveTransmission, type TransmissionStats } from './transmission.js';

/** Exports one server offers: each is a name in every NBD_OPT_LIST reply. */
export const MAX_EXPORTS = 128;
/** Handshake replies buffered for a client before the server waits for it to read them. */
const HANDSHAKE_WRITE_BUFFER_BYTES = 1024 * 1024;

export type NbdServerEvent =
  | { readonly type: 'connected'; readonly connection: number }
  | { readonly type: 'disconnected'; readonly connection: number }
  /** The connection was closed for breaking the protocol or a limit. */
  | { readonly type: 'rejected'; readonly connection: number; readonly error: FerryError }
  /** Reading the disk failed; the client got EIO and the connection goes on. */
  | { readonly type: 'disk-error'; readonly connection: number; readonly error: FerryError };

export interface NbdServerOptions {
  /** Unix socket path to create (≤ 107 bytes; must not exist). */
  readonly path: string;
  readonly exports: readonly NbdExport[];
  readonly maxConnections?: number;
  /** Requests served at once per connection. */
  readonly maxInFlight?: number;
  readonly handshakeTimeoutMs?: number;
  readonly onEvent?: (event: NbdServerEvent) => void;
}

/** The NBD URI QEMU understands for an export of a server on `path` (percent-encoded). */
export function nbdUnixUri(path: string, exportName: string): string {
  const enc = (s: string) => s.split('/').map(encodeURIComponent).join('/');
  return `nbd+unix:///${encodeURIComponent(exportName)}?socket=${enc(path)}`;
}

function checkExports(exports: readonly NbdExport[]): void {
  if (exports.length === 0 || exports.length > MAX_EXPORTS) {
    throw new InvalidArgumentError(`an NBD server serves 1 to ${MAX_EXPORTS} exports`, {
      exports: exports.length,
    });
  }
  const names = new Set<string>();
  for (const e of exports) {
    const bytes = Buffer.byteLength(e.name, 'utf8');
    if (bytes > NBD_MAX_STRING_BYTES || e.name.includes('\0') || names.has(e.name)) {
      throw new InvalidArgumentError(`invalid or duplicate NBD export name "${e.name}"`, { name: e.name });
    }
    names.add(e.name);
  }
}

export class NbdServer {
  readonly path: string;
  readonly #server: Server;
  readonly #exports: ReadonlyMap<string, NbdExport>;
  readonly #options: NbdServerOptions;
  readonly #sockets = new Set<Socket>();
  readonly #running = new Set<Promise<void>>();
  readonly #stats: TransmissionStats = { requests: 0, bytesRead: 0, errors: 0 };
  #nextId = 0;
  #closing: Promise<void> | undefined;

  private constructor(server: Server, options: NbdServerOptions) {
    this.#server = server;
    this.#options = options;
    this.path = options.path;
    this.#exports = new Map(options.exports.map((e) => [e.name, e]));
  }

  /** Creates the socket and starts accepting clients. */
  static async listen(options: NbdServerOptions): Promise<NbdServer> {
    checkExports(options.exports);
    if (Buffer.byteLength(options.path) > MAX_SOCKET_PATH_BYTES) {
      throw new InvalidArgumentError(`unix socket path is longer than ${MAX_SOCKET_PATH_BYTES} bytes`, {
        path: options.path,
      });
    }
    const server = createServer();
    const nbd = new NbdServer(server, options);
    server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    server.on('connection', (socket: Socket) => nbd.#accept(socket));
    server.on('drop', () => {
      const error = new NbdClientRejectedError('too many NBD connections', { limit: server.maxConnections });
      nbd.#emit({ type: 'rejected', connection: ++nbd.#nextId, error });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'the socket path is in use' : err.message;
        reject(
          new IoError(`cannot listen on ${options.path}: ${why}`, { path: options.path }, { cause: err }),
        );
      });
      server.listen(options.path, () => resolve());
    });
    server.on('error', () => {}); // after listen, errors belong to connections
    await chmod(options.path, 0o600).catch(async (err: unknown) => {
      await nbd.close();
      throw toFerryError(err);
    });
    return nbd;
  }

  /** `nbd+unix:///NAME?socket=PATH` for one of this server's exports. */
  uri(exportName: string): string {
    return nbdUnixUri(this.path, exportName);
  }

  get connections(): number {
    return this.#sockets.size;
  }

  /** Requests, bytes read and disk errors over every connection so far. */
  get stats(): Readonly<TransmissionStats> {
    return { ...this.#stats };
  }

  /** Stops accepting, drops every connection and removes the socket file. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      for (const s of this.#sockets) s.destroy();
      await Promise.allSettled([...this.#running]);
      await closed;
      await rm(this.path, { force: true });
    })();
    return this.#closing;
  }

  #lookup(name: string): NbdExport | undefined {
    const e = this.#exports.get(name);
    // "" is the default export (spec): the only one of a one-export server.
    if (!e && name === '' && this.#exports.size === 1) return this.#exports.values().next().value;
    return e;
  }

  #emit(event: NbdServerEvent): void {
    try {
      this.#options.onEvent?.(event);
    } catch {
      // A faulty observer must not take the server down.
    }
  }

  #accept(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const id = ++this.#nextId;
    this.#sockets.add(socket);
    socket.on('error', () => {}); // surfaced through the reader as ClientGone
    this.#emit({ type: 'connected', connection: id });
    const run = this.#serve(socket, id)
      .catch((err: unknown) => {
        if (err instanceof ClientGone) return;
        this.#emit({ type: 'rejected', connection: id, error: toFerryError(err) });
      })
      .finally(() => {
        socket.destroy();
        this.#sockets.delete(socket);
        this.#running.delete(run);
        this.#emit({ type: 'disconnected', connection: id });
      });
    this.#running.add(run);
  }

  async #serve(socket: Socket, id: number): Promise<void> {
    const reader = new ClientReader(socket);
    const ms = this.#options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, ms);
    let negotiated;
    try {
      negotiated = await negotiate({
        reader,
        write: (buf) => {
          if (!socket.destroyed) socket.write(buf);
        },
        drained: () => drained(socket),
        lookup: (name) => this.#lookup(name),
        exports: () => [...this.#exports.values()],
        shuttingDown: () => this.#closing !== undefined,
      });
    } catch (err) {
      if (timedOut) throw new NbdClientRejectedError(`NBD handshake not finished within ${ms} ms`, { ms });
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (!negotiated) return endGracefully(socket); // NBD_OPT_ABORT: flush the ACK, then close
    await serveTransmission({
      socket,
      reader,
      negotiated,
      maxInFlight: this.#options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
      stats: this.#stats,
      onDiskError: (err) => this.#emit({ type: 'disk-error', connection: id, error: toFerryError(err) }),
    });
    await endGracefully(socket);
  }
}

/** Sends what is queued, then FIN; resolves when flushed or when the socket died. */
function endGracefully(socket: Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    socket.once('finish', resolve);
    socket.once('close', resolve);
    socket.end();
  });
}

/** Resolves once the socket's write buffer is below the handshake bound. */
function drained(socket: Socket): Promise<void> {
  if (socket.destroyed || socket.writableLength < HANDSHAKE_WRITE_BUFFER_BYTES) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
