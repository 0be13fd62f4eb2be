/**
 * Frames of the connector link (docs/connector-protocol.md): after TLS, each message is
 *
 *   u32 BE  header length H   (1 … MAX_HEADER)
 *   u32 BE  body length B     (0 … MAX_BODY)
 *   H bytes header: UTF-8 JSON object
 *   B bytes body: opaque bytes (disk data), possibly zstd-compressed (header says)
 *
 * Both lengths are checked before anything is buffered, so a peer cannot make the other
 * end allocate more than one frame's cap. The decoder is pure (bytes in, frames out).
 */
import { LinkMessageTooLargeError, LinkProtocolError } from '../errors/index.js';

/** Headers are small JSON (method, params, errors); 1 MiB covers an inventory page. */
export const MAX_HEADER = 1 << 20;
/** Bodies carry disk reads: the largest read the server asks for (4 MiB) plus compression slack. */
export const MAX_BODY = 4 * (1 << 20) + (1 << 16);

export interface Frame {
  readonly header: Record<string, unknown>;
  readonly body: Buffer;
}

export function encodeFrame(header: object, body: Buffer = Buffer.alloc(0)): Buffer[] {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  if (h.length > MAX_HEADER)
    throw new LinkMessageTooLargeError(`link header of ${h.length} bytes`, { size: h.length });
  if (body.length > MAX_BODY)
    throw new LinkMessageTooLargeError(`link body of ${body.length} bytes`, { size: body.length });
  const prefix = Buffer.allocUnsafe(8);
  prefix.writeUInt32BE(h.length, 0);
  prefix.writeUInt32BE(body.length, 4);
  return body.length > 0 ? [prefix, h, body] : [prefix, h];
}

/** Incremental decoder: push what the socket gives, take whole frames. */
export class FrameDecoder {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need: { h: number; b: number } | undefined;

  push(chunk: Buffer): Frame[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const out: Frame[] = [];
    for (;;) {
      if (!this.#need) {
        if (this.#buffered < 8) return out;
        const prefix = this.#take(8);
        const h = prefix.readUInt32BE(0);
        const b = prefix.readUInt32BE(4);
        if (h === 0) throw new LinkProtocolError('link frame without a header');
        if (h > MAX_HEADER || b > MAX_BODY)
          throw new LinkMessageTooLargeError(`link frame of ${h} + ${b} bytes exceeds the caps`, {
            header: h,
            body: b,
          });
        this.#need = { h, b };
      }
      const { h, b } = this.#need;
      if (this.#buffered < h + b) return out;
      this.#need = undefined;
      const headerBytes = this.#take(h);
      const body = b > 0 ? this.#take(b) : Buffer.alloc(0);
      let header: unknown;
      try {
        header = JSON.parse(headerBytes.toString('utf8'));
      } catch {
        throw new LinkProtocolError('link frame header is not JSON');
      }
      if (typeof header !== 'object' || header === null || Array.isArray(header))
        throw new LinkProtocolError('link frame header is not a JSON object');
      out.push({ header: header as Record<string, unknown>, body });
    }
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    if (first.length >= n) {
      // Copy out, so a small header never pins a large socket buffer.
      const part = Buffer.from(first.subarray(0, n));
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#buffered -= n;
      return part;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.#chunks[0] as Buffer;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    this.#buffered -= n;
    return out;
  }
}
