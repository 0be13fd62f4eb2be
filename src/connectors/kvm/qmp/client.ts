/**
 * A small QMP client (QEMU Machine Protocol, docs/interop/qmp-spec.rst) over a unix or
 * TCP socket: reads the greeting, negotiates `qmp_capabilities`, sends commands with ids
 * and matches replies by id, and keeps the asynchronous events QEMU sends so a caller can
 * wait for one. Typed helpers for individual commands live in commands-*.ts.
 *
 * Every wait is bounded: connecting and the greeting by `connectTimeoutMs`, each command
 * by `commandTimeoutMs`, each event wait by its own timeout. A dropped socket fails every
 * pending command with FERRY_QMP_DISCONNECTED (retryable).
 */
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FerryError } from '../../../errors/index.js';
import {
  AbortedError,
  QmpCommandFailedError,
  QmpDisconnectedError,
  QmpProtocolError,
  QmpTimeoutError,
} from '../../../errors/index.js';
import { MAX_QMP_MESSAGE_BYTES, parseQmpMessage, QmpLineBuffer, type QmpVersion } from './framing.js';

/** Events kept for late waiters: enough for one job's status changes many times over. */
export const MAX_BUFFERED_QMP_EVENTS = 1024;
/**
 * Default per-command timeout: 60 s. QMP commands run in QEMU's main loop and return in
 * milliseconds; the slow ones (blockdev-add opening an image on slow storage, a
 * transaction draining I/O) take seconds. A minute means QEMU is stuck.
 */
export const DEFAULT_QMP_COMMAND_TIMEOUT_MS = 60_000;
/** Default connect + greeting timeout. QEMU serves one QMP client at a time: a second one waits. */
export const DEFAULT_QMP_CONNECT_TIMEOUT_MS = 10_000;
/** Ids of timed-out commands remembered so their late replies are dropped, not called unknown. */
const MAX_ABANDONED_IDS = 1024;

export type QmpEndpoint = { readonly path: string } | { readonly host: string; readonly port: number };

export interface QmpOptions {
  readonly connectTimeoutMs?: number;
  readonly commandTimeoutMs?: number;
  /** Cap on one message; defaults to MAX_QMP_MESSAGE_BYTES (tests lower it). */
  readonly maxMessageBytes?: number;
  readonly signal?: AbortSignal;
}

export interface QmpEvent {
  /** Position in this connection's event stream (1, 2, …); compare with {@link QmpClient.eventMark}. */
  readonly seq: number;
  readonly event: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly timestamp?: { readonly seconds: number; readonly microseconds: number };
}

interface Pending {
  readonly command: string;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: FerryError) => void;
  readonly timer: NodeJS.Timeout;
}

interface EventWaiter {
  readonly match: (e: QmpEvent) => boolean;
  readonly resolve: (e: QmpEvent) => void;
  readonly reject: (e: FerryError) => void;
}

const endpointName = (e: QmpEndpoint) => ('path' in e ? e.path : `${e.host}:${e.port}`);

export class QmpClient {
  readonly version: QmpVersion;
  /** Capabilities QEMU offered in its greeting (e.g. "oob"); none are enabled. */
  readonly capabilities: readonly string[];
  readonly #socket: Duplex;
  readonly #name: string;
  readonly #commandTimeoutMs: number;
  readonly #pending = new Map<string, Pending>();
  readonly #abandoned = new Set<string>();
  readonly #events: QmpEvent[] = [];
  readonly #waiters = new Set<EventWaiter>();
  readonly #listeners = new Set<(e: QmpEvent) => void>();
  #nextId = 1;
  #seq = 0;
  #failure: FerryError | undefined;
  readonly #closed: Promise<void>;

  private constructor(
    socket: Duplex,
    lines: QmpLineBuffer,
    name: string,
    greeting: Greeting,
    opts: QmpOptions,
  ) {
    this.#socket = socket;
    this.#name = name;
    this.version = greeting.version;
    this.capabilities = greeting.capabilities;
    this.#commandTimeoutMs = opts.commandTimeoutMs ?? DEFAULT_QMP_COMMAND_TIMEOUT_MS;
    this.#closed = socket.closed ? Promise.resolve() : new Promise((r) => socket.once('close', () => r()));
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const line of lines.push(chunk)) this.#dispatch(line);
      } catch (err) {
        this.#fail(err as FerryError);
        socket.destroy();
      }
    });
    socket.on('error', (err) => this.#fail(disconnected(name, 'socket error', err)));
    socket.on('close', () => this.#fail(disconnected(name, 'QEMU closed the QMP connection')));
    socket.resume();
  }

  /** Connects to QEMU's QMP socket, reads the greeting and leaves capabilities negotiation done. */
  static async connect(endpoint: QmpEndpoint, options: QmpOptions = {}): Promise<QmpClient> {
    const name = endpointName(endpoint);
    const socket = connect('path' in endpoint ? { path: endpoint.path } : endpoint);
    return QmpClient.open(socket, name, options);
  }

  /** Runs the QMP opening on an already-created stream (a socket being connected, a test pair). */
  static async open(socket: Duplex, name: string, options: QmpOptions = {}): Promise<QmpClient> {
    const lines = new QmpLineBuffer(options.maxMessageBytes ?? MAX_QMP_MESSAGE_BYTES);
    let greeting: Greeting;
    try {
      greeting = await readGreeting(socket, lines, name, options);
    } catch (err) {
      socket.destroy();
      throw err;
    }
    const client = new QmpClient(socket, lines, name, greeting, options);
    try {
      await client.execute('qmp_capabilities', undefined, { timeoutMs: options.connectTimeoutMs });
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  /**
   * Runs one command; resolves with its `return` value. A QMP `error` reply rejects with
   * FERRY_QMP_COMMAND_FAILED carrying QEMU's error class and description in `details`.
   */
  execute<T = unknown>(
    command: string,
    args?: Readonly<Record<string, unknown>>,
    options: { readonly timeoutMs?: number | undefined } = {},
  ): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = `ferry-${this.#nextId++}`;
    const timeoutMs = options.timeoutMs ?? this.#commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        this.#abandoned.add(id);
        if (this.#abandoned.size > MAX_ABANDONED_IDS) {
          this.#abandoned.delete(this.#abandoned.values().next().value as string);
        }
        reject(
          new QmpTimeoutError(`QEMU did not answer ${command} within ${timeoutMs} ms`, {
            command,
            timeoutMs,
            endpoint: this.#name,
          }),
        );
      }, timeoutMs);
      this.#pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      const msg = JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id });
      this.#socket.write(`${msg}\n`);
    });
  }

  /** Sequence number of the last event received; pass it as `after` to wait only for later events. */
  get eventMark(): number {
    return this.#seq;
  }

  /** The buffered events (the last MAX_BUFFERED_QMP_EVENTS) after `after`. */
  events(after = 0): readonly QmpEvent[] {
    return this.#events.filter((e) => e.seq > after);
  }

  /** Calls `listener` for every event from now on; returns the function that unsubscribes. */
  onEvent(listener: (e: QmpEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Resolves with the first event matching `match`: a buffered one with `seq > after`, or
   * the next one to arrive. `after` defaults to {@link eventMark} at the call (only new
   * events); take the mark before the command that causes the event to avoid a race.
   */
  waitForEvent(
    match: (e: QmpEvent) => boolean,
    options: { readonly timeoutMs?: number; readonly after?: number; readonly signal?: AbortSignal } = {},
  ): Promise<QmpEvent> {
    const after = options.after ?? this.#seq;
    const found = this.#events.find((e) => e.seq > after && match(e));
    if (found) return Promise.resolve(found);
    if (this.#failure) return Promise.reject(this.#failure);
    const timeoutMs = options.timeoutMs ?? this.#commandTimeoutMs;
    return new Promise<QmpEvent>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.#waiters.delete(waiter);
      };
      const waiter: EventWaiter = {
        match,
        resolve: (e) => (done(), resolve(e)),
        reject: (e) => (done(), reject(e)),
      };
      const timer = setTimeout(
        () =>
          waiter.reject(
            new QmpTimeoutError(`no matching QMP event within ${timeoutMs} ms`, {
              timeoutMs,
              endpoint: this.#name,
            }),
          ),
        timeoutMs,
      );
      const onAbort = () => waiter.reject(new AbortedError('waiting for a QMP event was cancelled'));
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  /** True once the connection failed or was closed. */
  get closed(): boolean {
    return this.#failure !== undefined;
  }

  /** Closes the connection; pending commands fail with FERRY_QMP_DISCONNECTED. */
  async close(): Promise<void> {
    if (!this.#failure) {
      this.#fail(
        new QmpDisconnectedError(`QMP connection to ${this.#name} was closed`, { endpoint: this.#name }),
      );
    }
    this.#socket.end();
    const timer = setTimeout(() => this.#socket.destroy(), 2000);
    await this.#closed;
    clearTimeout(timer);
  }

  #dispatch(line: string): void {
    const msg = parseQmpMessage(line);
    if (msg.type === 'event') {
      const e: QmpEvent = {
        seq: ++this.#seq,
        event: msg.event,
        data: msg.data,
        ...(msg.timestamp ? { timestamp: msg.timestamp } : {}),
      };
      this.#events.push(e);
      if (this.#events.length > MAX_BUFFERED_QMP_EVENTS) this.#events.shift();
      for (const w of [...this.#waiters]) if (w.match(e)) w.resolve(e);
      for (const l of [...this.#listeners]) l(e);
      return;
    }
    if (msg.type === 'greeting') throw new QmpProtocolError('QMP peer sent a second greeting', {});
    // We always send string ids. QEMU answers a line it could not parse without an id; it
    // runs commands in order (no out-of-band execution is enabled), so that answer
    // belongs to the oldest pending command.
    let id = typeof msg.id === 'string' ? msg.id : undefined;
    if (msg.id === undefined) id = this.#pending.keys().next().value;
    const p = id === undefined ? undefined : this.#pending.get(id);
    if (!p || id === undefined) {
      if (typeof msg.id === 'string' && this.#abandoned.delete(msg.id)) return;
      throw new QmpProtocolError('QMP peer answered a command that was not sent', {
        id: JSON.stringify(msg.id) ?? null,
      });
    }
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if (msg.type === 'return') p.resolve(msg.value);
    else {
      p.reject(
        new QmpCommandFailedError(`QEMU refused ${p.command}: ${msg.desc}`, {
          command: p.command,
          class: msg.errorClass,
          desc: msg.desc,
        }),
      );
    }
  }

  #fail(err: FerryError): void {
    if (!this.#failure) this.#failure = err;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
    for (const w of [...this.#waiters]) w.reject(err);
  }
}

interface Greeting {
  readonly version: QmpVersion;
  readonly capabilities: readonly string[];
}

function disconnected(name: string, why: string, cause?: Error): FerryError {
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new QmpDisconnectedError(
    `${why} (${name})${cause ? `: ${cause.message}` : ''}`,
    { endpoint: name, ...(errno ? { errno } : {}) },
    { cause },
  );
}

/** Waits for the first line, which must be the greeting; everything else is an error. */
function readGreeting(
  socket: Duplex,
  lines: QmpLineBuffer,
  name: string,
  options: QmpOptions,
): Promise<Greeting> {
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_QMP_CONNECT_TIMEOUT_MS;
  return new Promise<Greeting>((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      options.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (e: unknown) => (cleanup(), reject(e));
    const onData = (chunk: Buffer) => {
      socket.pause();
      try {
        const got = lines.push(chunk);
        if (got.length === 0) {
          socket.resume();
          return;
        }
        const first = parseQmpMessage(got[0] as string);
        if (first.type !== 'greeting')
          throw new QmpProtocolError('QMP peer did not start with a greeting', {});
        if (got.length > 1)
          throw new QmpProtocolError('QMP peer sent data before capabilities negotiation', {});
        // The stream stays paused until the client has attached its own handlers.
        cleanup();
        resolve({ version: first.version, capabilities: first.capabilities });
      } catch (err) {
        fail(err);
      }
    };
    const onError = (err: Error) => fail(disconnected(name, 'cannot reach the QMP socket', err));
    const onClose = () => fail(disconnected(name, 'QEMU closed the QMP connection before its greeting'));
    const onAbort = () => fail(new AbortedError('connecting to QMP was cancelled'));
    const timer = setTimeout(
      () =>
        fail(
          new QmpTimeoutError(
            `no QMP greeting from ${name} within ${timeoutMs} ms (another client may hold the monitor)`,
            { endpoint: name, timeoutMs },
          ),
        ),
      timeoutMs,
    );
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}
