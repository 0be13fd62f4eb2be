/**
 * The little QMP an instance needs (QEMU Machine Protocol, docs/interop/qmp-spec.rst):
 * connect to its unix socket, read the greeting, negotiate capabilities, run a command and
 * disconnect. Lines are capped (MAX_LINE_BYTES) and every wait is bounded. Launch may not
 * import the KVM connector's full client; this one keeps no connection open, because
 * QEMU serves one QMP client at a time and the control plane may want it.
 */
import { connect, type Socket } from 'node:net';
import type { FerryError } from '../../errors/index.js';
import {
  QmpCommandFailedError,
  QmpDisconnectedError,
  QmpMessageTooLargeError,
  QmpProtocolError,
  QmpTimeoutError,
} from '../../errors/index.js';

/** Largest QMP line accepted: the commands used here answer in a few hundred bytes. */
const MAX_LINE_BYTES = 1024 * 1024;

type Message = Record<string, unknown>;

export class QmpConnection {
  readonly #socket: Socket;
  readonly #path: string;
  #buffer = '';
  #lines: Message[] = [];
  #wake: (() => void) | undefined;
  #failure: FerryError | undefined;
  #nextId = 1;

  private constructor(socket: Socket, path: string) {
    this.#socket = socket;
    this.#path = path;
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.#push(text));
    socket.on('error', (err) =>
      this.#fail(new QmpDisconnectedError(`QMP socket ${path}: ${err.message}`, { path })),
    );
    socket.on('close', () =>
      this.#fail(new QmpDisconnectedError(`QEMU closed the QMP socket ${path}`, { path })),
    );
  }

  /** Connects, reads the greeting and leaves command mode negotiated. */
  static async connect(path: string, timeoutMs: number): Promise<QmpConnection> {
    const socket = connect(path);
    const q = new QmpConnection(socket, path);
    try {
      const greeting = await q.#next(timeoutMs, 'greeting');
      if (!('QMP' in greeting)) throw new QmpProtocolError('QMP peer sent no greeting', { path });
      await q.execute('qmp_capabilities', undefined, timeoutMs);
      return q;
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  /** Runs a command; resolves its `return` value. Events that arrive meanwhile are skipped. */
  async execute(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<unknown> {
    const id = `ferry-${this.#nextId++}`;
    this.#socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = await this.#next(Math.max(1, deadline - Date.now()), command);
      if (m['id'] !== id) continue; // an event, or a late reply to nothing of ours
      if ('return' in m) return m['return'];
      const e = (m['error'] ?? {}) as { class?: unknown; desc?: unknown };
      throw new QmpCommandFailedError(`QMP ${command} failed: ${String(e.desc)}`, {
        command,
        errorClass: String(e.class),
        desc: String(e.desc),
      });
    }
  }

  close(): void {
    this.#socket.destroy();
  }

  #push(text: string): void {
    this.#buffer += text;
    let nl: number;
    while ((nl = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, nl).trim();
      this.#buffer = this.#buffer.slice(nl + 1);
      if (line === '') continue;
      try {
        const v: unknown = JSON.parse(line);
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
        this.#lines.push(v as Message);
      } catch {
        this.#fail(
          new QmpProtocolError('QMP peer sent a line that is not a JSON object', { path: this.#path }),
        );
        return;
      }
    }
    if (this.#buffer.length > MAX_LINE_BYTES) {
      this.#fail(
        new QmpMessageTooLargeError(`a QMP message exceeds ${MAX_LINE_BYTES} bytes`, {
          limit: MAX_LINE_BYTES,
        }),
      );
    }
    this.#notify();
  }

  #fail(err: FerryError): void {
    this.#failure ??= err;
    this.#socket.destroy();
    this.#notify();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  async #next(timeoutMs: number, what: string): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.#lines.shift();
      if (m) return m;
      if (this.#failure) throw this.#failure;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new QmpTimeoutError(`QEMU did not answer ${what} within ${timeoutMs} ms`, {
          command: what,
          timeoutMs,
        });
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }
}
