/**
 * BlockSinks over local files and over a writable stream (stdout).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Writable } from 'node:stream';
import { OutputExistsError, SinkNotSeekableError, toFerryError } from '../../errors/index.js';
import type { BlockSink } from './block-sink.js';

export class FileSink implements BlockSink {
  readonly name: string;
  readonly seekable = true;
  readonly path: string;
  readonly #fh: FileHandle;
  #position = 0;

  private constructor(fh: FileHandle, path: string) {
    this.#fh = fh;
    this.path = path;
    this.name = basename(path);
  }

  /** Creates the file; refuses to overwrite unless `overwrite`. */
  static async create(path: string, options: { overwrite?: boolean } = {}): Promise<FileSink> {
    try {
      return new FileSink(await open(path, options.overwrite ? 'w' : 'wx', 0o644), path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new OutputExistsError(`${path} already exists (pass --force to overwrite)`, { path });
      }
      throw toFerryError(err);
    }
  }

  get position(): number {
    return this.#position;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    let done = 0;
    try {
      while (done < data.length) {
        const { bytesWritten } = await this.#fh.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      }
    } catch (err) {
      throw toFerryError(err);
    }
    this.#position = Math.max(this.#position, offset + data.length);
  }

  async writev(offset: number, parts: readonly Buffer[]): Promise<void> {
    let written: number;
    try {
      ({ bytesWritten: written } = await this.#fh.writev(parts as Buffer[], offset));
    } catch (err) {
      throw toFerryError(err);
    }
    // A short gather write is legal; finish the rest part by part.
    let pos = offset;
    for (const part of parts) {
      const done = Math.min(part.length, Math.max(0, written - (pos - offset)));
      if (done < part.length) await this.write(pos + done, part.subarray(done));
      pos += part.length;
    }
    this.#position = Math.max(this.#position, pos);
  }

  async truncate(size: number): Promise<void> {
    try {
      await this.#fh.truncate(size);
    } catch (err) {
      throw toFerryError(err);
    }
    this.#position = size;
  }

  async close(): Promise<void> {
    await this.#fh.close();
  }
}

/** Sequential sink over a stream, honouring backpressure. Gaps must be filled by the writer. */
export class StreamSink implements BlockSink {
  readonly name: string;
  readonly seekable = false;
  readonly #stream: Writable;
  #position = 0;

  constructor(stream: Writable, name = 'stdout') {
    this.#stream = stream;
    this.name = name;
  }

  get position(): number {
    return this.#position;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (offset !== this.#position) {
      throw new SinkNotSeekableError(
        `${this.name}: write at ${offset} but the stream is at ${this.#position}`,
      );
    }
    this.#position += data.length;
    if (!this.#stream.write(data)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          this.#stream.off('error', onError);
          resolve();
        };
        const onError = (err: Error) => {
          this.#stream.off('drain', onDrain);
          reject(toFerryError(err));
        };
        this.#stream.once('drain', onDrain);
        this.#stream.once('error', onError);
      });
    }
  }

  /** Grows the stream with zeros (a pipe has no holes). */
  async truncate(size: number): Promise<void> {
    if (size < this.#position) throw new SinkNotSeekableError(`${this.name}: cannot shrink a stream`);
    const zero = Buffer.alloc(Math.min(size - this.#position, 1 << 20));
    while (this.#position < size) {
      const n = Math.min(zero.length, size - this.#position);
      await this.write(this.#position, n === zero.length ? zero : zero.subarray(0, n));
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (this.#stream === process.stdout) return resolve();
      this.#stream.end(resolve);
    });
  }
}
