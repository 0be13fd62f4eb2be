/**
 * QMP framing: the QEMU Machine Protocol sends one JSON object per line, each terminated
 * by CRLF (docs/interop/qmp-spec.rst, "Protocol Specification"). This file splits a byte
 * stream into lines under a size cap and classifies each message; it does no I/O, so it
 * is tested from in-memory buffers.
 */
import { QmpMessageTooLargeError, QmpProtocolError } from '../../../errors/index.js';

/**
 * Largest QMP message accepted: 16 MiB. The largest legitimate replies are
 * `query-named-block-nodes` / `query-block` on VMs with many disks and deep backing
 * chains (each node repeats its chain's image info): a few MiB at most. A peer that sends
 * more without a newline is refused, so a broken or hostile peer cannot make us buffer
 * without bound.
 */
export const MAX_QMP_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Splits a byte stream into lines (without the CR/LF), refusing any line over the cap. */
export class QmpLineBuffer {
  readonly #max: number;
  #parts: Buffer[] = [];
  #partBytes = 0;

  constructor(maxMessageBytes = MAX_QMP_MESSAGE_BYTES) {
    this.#max = maxMessageBytes;
  }

  /** Bytes of the incomplete line held so far. */
  get pending(): number {
    return this.#partBytes;
  }

  /** Adds bytes; returns the complete lines they finish (UTF-8 decoded, CR/LF removed). */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      if (this.#partBytes + (end - start) > this.#max) {
        throw new QmpMessageTooLargeError(
          `a QMP message exceeds ${this.#max} bytes; the connection is closed`,
          { limit: this.#max },
        );
      }
      if (nl === -1) {
        this.#parts.push(chunk.subarray(start));
        this.#partBytes += chunk.length - start;
        break;
      }
      const piece = chunk.subarray(start, nl);
      const whole = this.#parts.length === 0 ? piece : Buffer.concat([...this.#parts, piece]);
      this.#parts = [];
      this.#partBytes = 0;
      const text = whole.toString('utf8').replace(/\r$/, '');
      if (text.trim() !== '') lines.push(text);
      start = nl + 1;
    }
    return lines;
  }
}

export interface QmpVersion {
  readonly major: number;
  readonly minor: number;
  readonly micro: number;
  /** Distribution package string (e.g. "Debian 1:7.2+dfsg-7"), possibly empty. */
  readonly package: string;
}

export type QmpMessage =
  | { readonly type: 'greeting'; readonly version: QmpVersion; readonly capabilities: readonly string[] }
  | { readonly type: 'return'; readonly id: unknown; readonly value: unknown }
  | {
      readonly type: 'error';
      readonly id: unknown;
      readonly errorClass: string;
      readonly desc: string;
    }
  | {
      readonly type: 'event';
      readonly event: string;
      readonly data: Readonly<Record<string, unknown>>;
      readonly timestamp?: { readonly seconds: number; readonly microseconds: number };
    };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(message: string, line: string): never {
  throw new QmpProtocolError(message, { message: line.length > 200 ? `${line.slice(0, 200)}…` : line });
}

/** Parses and classifies one QMP line; anything that is not a QMP message is a protocol error. */
export function parseQmpMessage(line: string): QmpMessage {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    bad('QMP peer sent a line that is not JSON', line);
  }
  if (!isObject(v)) bad('QMP peer sent a JSON value that is not an object', line);
  if ('QMP' in v) {
    const g = v.QMP;
    const ver = isObject(g) && isObject(g.version) ? g.version : undefined;
    const q = ver && isObject(ver.qemu) ? ver.qemu : undefined;
    const num = (x: unknown) => (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : -1);
    if (!q || num(q.major) < 0 || num(q.minor) < 0 || num(q.micro) < 0) {
      bad('QMP greeting has no QEMU version', line);
    }
    const caps = isObject(g) && Array.isArray(g.capabilities) ? g.capabilities : [];
    return {
      type: 'greeting',
      version: {
        major: q.major as number,
        minor: q.minor as number,
        micro: q.micro as number,
        package: typeof ver?.package === 'string' ? ver.package : '',
      },
      capabilities: caps.filter((c): c is string => typeof c === 'string'),
    };
  }
  if ('return' in v) return { type: 'return', id: v.id, value: v.return };
  if ('error' in v) {
    const e = v.error;
    if (!isObject(e) || typeof e.class !== 'string' || typeof e.desc !== 'string') {
      bad('QMP error reply lacks class or desc', line);
    }
    return { type: 'error', id: v.id, errorClass: e.class, desc: e.desc };
  }
  if (typeof v.event === 'string') {
    const ts = v.timestamp;
    return {
      type: 'event',
      event: v.event,
      data: isObject(v.data) ? v.data : {},
      ...(isObject(ts) && typeof ts.seconds === 'number' && typeof ts.microseconds === 'number'
        ? { timestamp: { seconds: ts.seconds, microseconds: ts.microseconds } }
        : {}),
    };
  }
  bad('QMP peer sent an object that is neither a greeting, a reply nor an event', line);
}
