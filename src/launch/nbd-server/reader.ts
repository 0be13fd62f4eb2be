/**
 * Exact-length reads from a client socket. The handshake and request loop read a header,
 * check it, then read (or skip) a payload whose length they have bounded. Incoming bytes
 * are buffered only up to a high-water mark (the socket is paused beyond it), so a client
 * that sends faster than the server consumes cannot grow memory.
 */
import type { Socket } from 'node:net';
import { READ_HIGH_WATER_BYTES } from './protocol.js';

/** Thrown by reads once the client has gone (end, close or error): ends the connection quietly. */
export class ClientGone extends Error {
  constructor() {
    super('NBD client disconnected');
  }
}

export class ClientReader {
  readonly #socket: Socket;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #wake: (() => void) | undefined;
  #gone = false;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered >= READ_HIGH_WATER_BYTES) socket.pause();
      this.#notify();
    });
    const gone = () => {
      this.#gone = true;
      this.#notify();
    };
    socket.on('end', gone);
    socket.on('close', gone);
    socket.on('error', gone);
  }

  /** Reads exactly `n` bytes (`n` already bounded by the caller). */
  async read(n: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    await this.#consume(n, (piece) => {
      piece.copy(out, at);
      at += piece.length;
    });
    return out;
  }

  /** Reads and drops exactly `n` bytes (a write payload the server refuses). */
  async skip(n: number): Promise<void> {
    await this.#consume(n, () => {});
  }

  async #consume(n: number, take: (piece: Buffer) => void): Promise<void> {
    while (n > 0) {
      if (this.#buffered === 0) {
        if (this.#gone) throw new ClientGone();
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          this.#socket.resume();
        });
        continue;
      }
      const head = this.#chunks[0] as Buffer;
      const k = Math.min(head.length, n);
      take(head.subarray(0, k));
      if (k === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(k);
      this.#buffered -= k;
      n -= k;
    }
    if (this.#buffered < READ_HIGH_WATER_BYTES && this.#socket.isPaused() && !this.#gone)
      this.#socket.resume();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }
}
