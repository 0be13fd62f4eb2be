/**
 * Calls over one connector link, in both directions: either end may call a method the
 * other registered and get its result (JSON) and body (bytes) back; notes are one-way
 * (heartbeats). Headers:
 *
 *   {"k":"call","id":N,"m":METHOD,"p":PARAMS[,"z":RAW_LENGTH]}   a call (body: its bytes)
 *   {"k":"ok","id":N,"r":RESULT[,"z":RAW_LENGTH]}                 its answer (body: bytes)
 *   {"k":"err","id":N,"e":{"code","message","details"}}           a coded failure
 *   {"k":"note","m":METHOD,"p":PARAMS}                            one-way
 *
 * Calls are bounded: a timeout each, at most MAX_IN_FLIGHT unanswered per direction (the
 * other end is refused beyond it), and when the link closes every pending call fails with
 * FERRY_LINK_DOWN (retryable) at once — never a hang.
 */
import type { Duplex } from 'node:stream';
import {
  errorFromWire,
  LinkDownError,
  LinkProtocolError,
  LinkTimeoutError,
  toFerryError,
  type FerryError,
} from '../errors/index.js';
import { pack, unpack } from './compress.js';
import { encodeFrame, FrameDecoder, type Frame } from './frames.js';
import { isRecord } from './params.js';

export type Handler = (
  params: Record<string, unknown>,
  body: Buffer,
) => Promise<{ result?: unknown; body?: Buffer } | void>;

/** Calls one end keeps open at once; more means a runaway peer. */
export const MAX_IN_FLIGHT = 256;
export const DEFAULT_CALL_TIMEOUT_MS = 120_000;

interface Pending {
  resolve(v: { result: unknown; body: Buffer }): void;
  reject(e: FerryError): void;
  timer: NodeJS.Timeout;
}

export interface PeerOptions {
  readonly handlers?: Readonly<Record<string, Handler>>;
  readonly notes?: Readonly<Record<string, (params: Record<string, unknown>) => void>>;
  readonly callTimeoutMs?: number;
  /** Compress call and answer bodies (zstd) when it pays. */
  readonly compress?: boolean;
}

export class LinkPeer {
  readonly #socket: Duplex;
  readonly #o: PeerOptions;
  readonly #pending = new Map<number, Pending>();
  readonly #decoder = new FrameDecoder();
  #serving = 0;
  #next = 1;
  #closedWith: FerryError | undefined;
  readonly #closeListeners = new Set<(err: FerryError) => void>();

  constructor(socket: Duplex, o: PeerOptions = {}) {
    this.#socket = socket;
    this.#o = o;
    // Calls are small frames answered by large ones: with Nagle's algorithm a call waits for
    // the ACK of the previous answer, which the peer delays (~40 ms) — 4 MiB reads crawled
    // at 70 MB/s on loopback (bench/connector-link.ts).
    (socket as Duplex & { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = this.#decoder.push(chunk);
      } catch (err) {
        this.close(toFerryError(err));
        return;
      }
      for (const f of frames) this.#onFrame(f);
    });
    socket.on('error', (err) => this.close(new LinkDownError(`link error: ${err.message}`)));
    socket.on('close', () => this.close(new LinkDownError('the link closed')));
  }

  get closed(): boolean {
    return this.#closedWith !== undefined;
  }

  /** Called once, when the link closes (at once if it already has). */
  onClose(listener: (err: FerryError) => void): void {
    if (this.#closedWith) listener(this.#closedWith);
    else this.#closeListeners.add(listener);
  }

  call(
    method: string,
    params: object = {},
    body?: Buffer,
    o: { timeoutMs?: number } = {},
  ): Promise<{ result: unknown; body: Buffer }> {
    if (this.#closedWith) return Promise.reject(new LinkDownError(`link down: ${this.#closedWith.message}`));
    if (this.#pending.size >= MAX_IN_FLIGHT)
      return Promise.reject(new LinkTimeoutError(`more than ${MAX_IN_FLIGHT} calls waiting on the link`));
    const id = this.#next++;
    const timeoutMs = o.timeoutMs ?? this.#o.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new LinkTimeoutError(`${method} not answered within ${timeoutMs} ms`, { method }));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#send({ k: 'call', id, m: method, p: params }, body);
    });
  }

  note(method: string, params: object = {}): void {
    if (!this.#closedWith) this.#send({ k: 'note', m: method, p: params });
  }

  close(err: FerryError = new LinkDownError('the link was closed')): void {
    if (this.#closedWith) return;
    this.#closedWith = err;
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(err.code === 'FERRY_LINK_DOWN' ? err : new LinkDownError(`link closed: ${err.message}`));
      this.#pending.delete(id);
    }
    this.#socket.destroy();
    for (const l of this.#closeListeners) l(err);
    this.#closeListeners.clear();
  }

  #send(header: Record<string, unknown>, body?: Buffer): void {
    let payload = body;
    if (body && body.length > 0 && this.#o.compress) {
      const packed = pack(body);
      payload = packed.body;
      if (packed.rawLength !== undefined) header.z = packed.rawLength;
    }
    try {
      for (const part of encodeFrame(header, payload)) this.#socket.write(part);
    } catch (err) {
      this.close(toFerryError(err));
    }
  }

  #onFrame(f: Frame): void {
    const h = f.header;
    try {
      if (h.k === 'ok' || h.k === 'err') return this.#onAnswer(h, f.body);
      if (h.k === 'call') return this.#onCall(h, f.body);
      if (h.k === 'note') {
        const fn = typeof h.m === 'string' ? this.#o.notes?.[h.m] : undefined;
        fn?.(isRecord(h.p) ? h.p : {});
        return;
      }
      throw new LinkProtocolError(`unknown link frame kind ${JSON.stringify(h.k)}`);
    } catch (err) {
      this.close(toFerryError(err));
    }
  }

  #onAnswer(h: Record<string, unknown>, body: Buffer): void {
    const p = typeof h.id === 'number' ? this.#pending.get(h.id) : undefined;
    // An answer after its call timed out is dropped; an id never used is a protocol error.
    if (!p) {
      if (typeof h.id === 'number' && h.id > 0 && h.id < this.#next) return;
      throw new LinkProtocolError('link answer to no call');
    }
    this.#pending.delete(h.id as number);
    clearTimeout(p.timer);
    if (h.k === 'ok') p.resolve({ result: h.r, body: unpack(body, h.z) });
    else {
      const e = isRecord(h.e) ? h.e : {};
      p.reject(errorFromWire(e.code, e.message, e.details));
    }
  }

  #onCall(h: Record<string, unknown>, raw: Buffer): void {
    const id = h.id;
    if (typeof id !== 'number' || typeof h.m !== 'string') throw new LinkProtocolError('malformed link call');
    const handler = Object.hasOwn(this.#o.handlers ?? {}, h.m) ? this.#o.handlers![h.m] : undefined;
    const fail = (err: unknown) => {
      const fe = toFerryError(err);
      this.#send({ k: 'err', id, e: { code: fe.code, message: fe.message, details: fe.details } });
    };
    if (!handler) return fail(new LinkProtocolError(`no link method ${h.m}`));
    if (this.#serving >= MAX_IN_FLIGHT) return fail(new LinkTimeoutError('too many calls in flight'));
    this.#serving++;
    Promise.resolve()
      .then(() => handler(isRecord(h.p) ? h.p : {}, unpack(raw, h.z)))
      .then(
        (out) => this.#send({ k: 'ok', id, r: out?.result ?? null }, out?.body),
        (err: unknown) => fail(err),
      )
      .finally(() => this.#serving--);
  }
}
