/**
 * A client of the QEMU guest agent (qemu-ga) channel. When the VM has one next to its
 * QMP socket (`DIR/NAME.qga` for `DIR/NAME.qmp`, docs/connectors/kvm.md), the snapshot
 * asks the guest through it to flush and freeze its file systems around the one QMP
 * transaction, and to thaw them right after (guest-freeze.ts): application consistency
 * without installing anything of Ferry's in the guest.
 *
 * Protocol (QEMU docs/interop/qemu-ga-ref, "guest-sync-delimited"; QMP framing, one JSON
 * object per line): the channel may hold stale bytes of an earlier client, so every
 * conversation starts with a 0xFF byte (qemu-ga flushes its parser on it) and
 * `guest-sync-delimited` with a random id; the agent answers 0xFF then `{"return": id}`.
 * Everything before that delimiter, and every response that is not the one with our id,
 * is discarded. After any client-side timeout the stream is out of step again, and the
 * next command is preceded by another sync.
 *
 * Every wait is bounded, and so is every length the agent sends (a line, the stale bytes
 * discarded while syncing): the agent runs inside the guest and is not trusted.
 */
import { randomInt } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type { FerryError } from '../../errors/index.js';
import {
  QmpCommandFailedError,
  QmpDisconnectedError,
  QmpMessageTooLargeError,
  QmpProtocolError,
  QmpTimeoutError,
} from '../../errors/index.js';

/**
 * Longest line accepted from the agent: 64 KiB. The answers used here are a few dozen
 * bytes (`{"return": 2}`); an error's description a few hundred.
 */
export const MAX_AGENT_LINE_BYTES = 64 * 1024;
/** Stale bytes discarded while looking for our sync answer; more means a broken or hostile agent. */
export const MAX_AGENT_DISCARD_BYTES = 1024 * 1024;
/** The agent channel of the VM whose QMP socket is `qmpSocket` (`DIR/NAME.qmp` → `DIR/NAME.qga`). */
export function guestAgentPath(qmpSocket: string): string {
  return `${qmpSocket.replace(/\.qmp$/, '')}.qga`;
}

/** One connection to a guest agent. */
export class GuestAgentChannel {
  readonly #socket: Socket;
  readonly #path: string;
  #buf: Buffer = Buffer.alloc(0);
  #failure: FerryError | undefined;
  #wake: (() => void) | undefined;
  /** True until a sync succeeded, and again after any timeout: the next answer may be stale. */
  #needsSync = true;

  private constructor(socket: Socket, path: string) {
    this.#socket = socket;
    this.#path = path;
    socket.on('data', (chunk: Buffer) => {
      // Bounded even when nobody reads (a late answer to a timed-out command).
      if (this.#buf.length + chunk.length > MAX_AGENT_DISCARD_BYTES + MAX_AGENT_LINE_BYTES) {
        this.#fail(
          new QmpMessageTooLargeError(`guest agent ${path} sent more than it was asked for`, {
            agent: path,
            limit: MAX_AGENT_DISCARD_BYTES + MAX_AGENT_LINE_BYTES,
          }),
        );
        return;
      }
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      this.#wake?.();
    });
    socket.on('error', (err) => this.#fail(disconnected(path, err.message, err)));
    socket.on('close', () => this.#fail(disconnected(path, 'the agent channel closed')));
  }

  static connect(path: string, timeoutMs: number): Promise<GuestAgentChannel> {
    return new Promise((resolve, reject) => {
      const socket = connect({ path });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new QmpTimeoutError(`guest agent ${path}: no connection within ${timeoutMs} ms`, { agent: path }),
        );
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(disconnected(path, err.message, err));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new GuestAgentChannel(socket, path));
      });
    });
  }

  get needsSync(): boolean {
    return this.#needsSync || this.#failure !== undefined;
  }

  /** guest-sync-delimited with a random id; returns once the agent's answer to it arrived. */
  async sync(timeoutMs: number): Promise<void> {
    const id = randomInt(1, 2 ** 47);
    const deadline = Date.now() + timeoutMs;
    this.#needsSync = true;
    // The leading 0xFF makes qemu-ga drop whatever partial input an earlier client left.
    this.#write(Buffer.concat([Buffer.from([0xff]), line('guest-sync-delimited', { id })]));
    let discarded = 0;
    for (;;) {
      const at = this.#buf.indexOf(0xff);
      if (at < 0) {
        discarded += this.#buf.length;
        this.#buf = Buffer.alloc(0);
      } else {
        discarded += at;
        this.#buf = this.#buf.subarray(at + 1);
      }
      if (discarded > MAX_AGENT_DISCARD_BYTES) {
        throw this.#fail(
          new QmpMessageTooLargeError(
            `guest agent ${this.#path} sent over ${MAX_AGENT_DISCARD_BYTES} bytes before answering guest-sync-delimited`,
            { agent: this.#path, limit: MAX_AGENT_DISCARD_BYTES },
          ),
        );
      }
      if (at < 0) {
        await this.#data(deadline, 'guest-sync-delimited');
        continue;
      }
      // The answer follows the delimiter; anything else there is a stale response.
      const text = await this.#line(deadline, 'guest-sync-delimited');
      discarded += text.length;
      const msg = parse(text);
      if (msg && msg.return === id) {
        this.#needsSync = false;
        return;
      }
    }
  }

  /** Runs one command; its `return` value, or FERRY_QMP_COMMAND_FAILED with the agent's error. */
  async execute(command: string, timeoutMs: number): Promise<unknown> {
    if (this.needsSync) await this.sync(timeoutMs);
    const deadline = Date.now() + timeoutMs;
    this.#write(line(command));
    const text = await this.#line(deadline, command);
    const msg = parse(text);
    if (msg && 'return' in msg) return msg.return;
    const error = msg?.error as { class?: unknown; desc?: unknown } | undefined;
    if (error && typeof error === 'object') {
      throw new QmpCommandFailedError(`guest agent: ${command}: ${String(error.desc).slice(0, 512)}`, {
        agent: this.#path,
        command,
        class: String(error.class).slice(0, 128),
        desc: String(error.desc).slice(0, 512),
      });
    }
    this.#needsSync = true;
    throw new QmpProtocolError(
      `guest agent ${this.#path} answered ${command} with something that is not QMP`,
      {
        agent: this.#path,
        command,
      },
    );
  }

  close(): void {
    this.#socket.destroy();
  }

  #write(bytes: Buffer): void {
    if (this.#failure) throw this.#failure;
    this.#socket.write(bytes);
  }

  /** The next non-empty line (CR/LF removed), at most MAX_AGENT_LINE_BYTES. */
  async #line(deadline: number, command: string): Promise<string> {
    for (;;) {
      const nl = this.#buf.indexOf(0x0a);
      if (nl >= 0) {
        const raw = this.#buf.subarray(0, nl);
        this.#buf = this.#buf.subarray(nl + 1);
        if (raw.length > MAX_AGENT_LINE_BYTES) throw this.#tooLong();
        const text = raw.toString('utf8').trim();
        if (text !== '') return text;
        continue;
      }
      if (this.#buf.length > MAX_AGENT_LINE_BYTES) throw this.#tooLong();
      await this.#data(deadline, command);
    }
  }

  /** Waits for more bytes, the channel's end, or the deadline (then the stream needs a sync). */
  async #data(deadline: number, command: string): Promise<void> {
    if (this.#failure) throw this.#failure;
    const left = deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const arrived = await new Promise<boolean>((resolve) => {
      this.#wake = () => resolve(true);
      timer = setTimeout(() => resolve(false), Math.max(0, left));
    }).finally(() => {
      clearTimeout(timer);
      this.#wake = undefined;
    });
    if (this.#failure) throw this.#failure;
    if (!arrived) {
      this.#needsSync = true;
      throw new QmpTimeoutError(`guest agent ${this.#path} did not answer ${command} in time`, {
        agent: this.#path,
        command,
      });
    }
  }

  #tooLong(): FerryError {
    return this.#fail(
      new QmpMessageTooLargeError(
        `guest agent ${this.#path} sent a line over ${MAX_AGENT_LINE_BYTES} bytes`,
        {
          agent: this.#path,
          limit: MAX_AGENT_LINE_BYTES,
        },
      ),
    );
  }

  #fail(err: FerryError): FerryError {
    this.#failure ??= err;
    this.#socket.destroy();
    this.#wake?.();
    return this.#failure;
  }
}

function line(command: string, args?: Record<string, unknown>): Buffer {
  return Buffer.from(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) })}\n`);
}

function parse(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function disconnected(path: string, why: string, cause?: NodeJS.ErrnoException): FerryError {
  return new QmpDisconnectedError(
    `guest agent ${path}: ${why}`,
    { agent: path, ...(cause?.code ? { errno: cause.code } : {}) },
    { cause },
  );
}
