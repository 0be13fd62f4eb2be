/**
 * Exact-length reads from a socket: the NBD handshake and reply loop read a header, then
 * a payload whose length they have checked. Incoming bytes are buffered only up to a high
 * water mark (the socket is paused beyond it), so a server that sends faster than we
 * consume cannot grow memory; payloads go straight into the caller's buffer.
 */
import type { Duplex } from 'node:stream';
import type { FerryError } from '../../../errors/index.js';

/** Bytes buffered from the socket before it is paused. */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;

export class StreamReader {
  readonly #stream: Duplex;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #wake: (() => void) | undefined;
  #error: FerryError | undefined;

  /** `onEnd` makes the error reported when the stream ends or fails before a read completes. */
  constructor(stream: Duplex, onEnd: (cause?: Error) => FerryError) {
    this.#stream = stream;
    stream.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered >= HIGH_WATER_BYTES) stream.pause();
      this.#notify();
    });
    stream.on('end', () => this.fail(onEnd()));
    stream.on('close', () => this.fail(onEnd()));
    stream.on('error', (err) => this.fail(onEnd(err)));
  }

  /** Makes every pending and later read fail with `err` (the first failure wins). */
  fail(err: FerryError): void {
    this.#error ??= err;
    this.#notify();
  }

  get failure(): FerryError | undefined {
    return this.#error;
  }

  /** Reads exactly `n` bytes into a new buffer (`n` is a checked, small length). */
  async read(n: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(n);
    await this.readInto(out, 0, n);
    return out;
  }

  /** Reads exactly `n` bytes into `dst` at `at`. */
  async readInto(dst: Buffer, at: number, n: number): Promise<void> {
    while (n > 0) {
      if (this.#buffered === 0) {
        if (this.#error) throw this.#error;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          this.#stream.resume();
        });
        continue;
      }
      const head = this.#chunks[0] as Buffer;
      const k = Math.min(head.length, n);
      head.copy(dst, at, 0, k);
      if (k === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(k);
      this.#buffered -= k;
      at += k;
      n -= k;
    }
    if (this.#buffered < HIGH_WATER_BYTES && this.#stream.isPaused()) this.#stream.resume();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }
}
