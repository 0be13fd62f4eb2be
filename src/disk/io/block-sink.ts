/**
 * The output half of the I/O seam. Writers produce bytes only through a BlockSink.
 * A seekable sink (a file) accepts writes anywhere; a sequential sink (stdout, a
 * socket) accepts only writes at its current end, which formats such as VMDK
 * streamOptimized and raw are designed for.
 */
import { SinkNotSeekableError } from '../../errors/index.js';

export interface BlockSink {
  readonly name: string;
  readonly seekable: boolean;
  /** Writes all of `data` at `offset`. A sequential sink requires offset === position. */
  write(offset: number, data: Buffer): Promise<void>;
  /** Optional gather write of consecutive parts (one syscall, no concatenation copy). */
  writev?(offset: number, parts: readonly Buffer[]): Promise<void>;
  /** Sets the final length (extends with a hole or zeros). Sequential sinks only grow. */
  truncate(size: number): Promise<void>;
  /** Bytes written so far at the highest offset (the sink's length). */
  readonly position: number;
  close(): Promise<void>;
}

/** Grows into memory. Used by tests, and for small metadata images. */
export class MemorySink implements BlockSink {
  readonly name: string;
  readonly seekable: boolean;
  #chunks: Buffer = Buffer.alloc(0);
  #length = 0;

  constructor(options: { seekable?: boolean; name?: string } = {}) {
    this.seekable = options.seekable ?? true;
    this.name = options.name ?? 'memory';
  }

  get position(): number {
    return this.#length;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (!this.seekable && offset !== this.#length) {
      throw new SinkNotSeekableError(`${this.name}: write at ${offset} but position is ${this.#length}`);
    }
    this.#ensure(offset + data.length);
    data.copy(this.#chunks, offset);
    this.#length = Math.max(this.#length, offset + data.length);
  }

  async truncate(size: number): Promise<void> {
    if (!this.seekable && size < this.#length) {
      throw new SinkNotSeekableError(`${this.name}: cannot shrink a sequential output`);
    }
    this.#ensure(size);
    if (size < this.#length) this.#chunks.fill(0, size, this.#length);
    this.#length = size;
  }

  #ensure(size: number): void {
    if (size <= this.#chunks.length) return;
    const next = Buffer.alloc(Math.max(size, this.#chunks.length * 2));
    this.#chunks.copy(next, 0, 0, this.#length);
    this.#chunks = next;
  }

  /** The bytes written so far. */
  contents(): Buffer {
    return this.#chunks.subarray(0, this.#length);
  }

  async close(): Promise<void> {}
}
