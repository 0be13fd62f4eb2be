/**
 * The input half of the one I/O seam for disks. Every format parser reads its file(s)
 * only through a ByteSource; parsers never import node:fs, so they are tested from
 * in-memory buffers and cannot read outside what the caller opened for them.
 *
 * Reads are strict: a read that would pass the end of the source throws
 * FERRY_IMAGE_TRUNCATED instead of returning fewer bytes, so no parser ever mistakes
 * a short buffer for data.
 */
import { ImageTooLargeError, ImageTruncatedError } from '../../errors/index.js';
import { MAX_SINGLE_READ_BYTES } from '../limits.js';

export interface ByteSource {
  /** Name for messages (the file's base name; never used to open anything). */
  readonly name: string;
  /** Size in bytes, fixed when the source was opened. */
  readonly size: number;
  /** Returns exactly `length` bytes at `offset`, or throws FERRY_IMAGE_TRUNCATED. */
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Like `read`, into `target` (all of it): lets the pipeline reuse its buffers. Optional;
   * callers fall back to `read`.
   */
  readInto?(offset: number, target: Buffer): Promise<void>;
  close(): Promise<void>;
}

/**
 * Validates a read request against a source size. Shared by every ByteSource so the
 * strictness (and the cap on one allocation) is the same everywhere.
 */
export function checkRead(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new ImageTruncatedError(`${name}: invalid read at ${offset} length ${length}`, {
      source: name,
      offset,
      length,
    });
  }
  if (length > MAX_SINGLE_READ_BYTES) {
    throw new ImageTooLargeError(`${name}: a single read of ${length} bytes exceeds the limit`, {
      source: name,
      length,
      limit: MAX_SINGLE_READ_BYTES,
    });
  }
  if (offset + length > size) {
    throw new ImageTruncatedError(
      `${name}: needs bytes ${offset}..${offset + length} but the file has only ${size} bytes`,
      { source: name, offset, length, size },
    );
  }
}

/** A source over a buffer: the test seam, and the view of small embedded files. */
export class MemorySource implements ByteSource {
  readonly name: string;
  readonly size: number;
  #buf: Buffer;

  constructor(buf: Buffer | Uint8Array, name = 'memory') {
    this.#buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.size = this.#buf.length;
    this.name = name;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRead(this.name, this.size, offset, length);
    // Copy: callers may keep or mutate what they get without aliasing the backing buffer.
    return Buffer.from(this.#buf.subarray(offset, offset + length));
  }

  async close(): Promise<void> {}
}

/** A window [start, start+size) of another source, e.g. a file inside an OVA (tar). */
export class SliceSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  readonly #inner: ByteSource;
  readonly #start: number;

  constructor(inner: ByteSource, start: number, size: number, name = inner.name) {
    checkRead(inner.name, inner.size, start, 0);
    if (start + size > inner.size) checkRead(inner.name, inner.size, start, size);
    this.#inner = inner;
    this.#start = start;
    this.size = size;
    this.name = name;
  }

  read(offset: number, length: number): Promise<Buffer> {
    checkRead(this.name, this.size, offset, length);
    return this.#inner.read(this.#start + offset, length);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
