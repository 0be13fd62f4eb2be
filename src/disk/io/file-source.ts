/**
 * ByteSource over a local file. The only place (with file-sink.ts and resolver.ts)
 * where the disk engine touches node:fs.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { FileNotFoundError, ImageTruncatedError, toFerryError } from '../../errors/index.js';
import { checkRead, type ByteSource } from './byte-source.js';

export class FileSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  /** Absolute path, for the chain's loop detection and for messages. */
  readonly path: string;
  readonly #fh: FileHandle;

  private constructor(fh: FileHandle, path: string, size: number) {
    this.#fh = fh;
    this.path = path;
    this.size = size;
    this.name = basename(path);
  }

  static async open(path: string): Promise<FileSource> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw toFerryError(err);
    }
    try {
      const st = await fh.stat();
      if (st.isDirectory())
        throw new FileNotFoundError(`${path} is a directory, not an image file`, { path });
      // Block devices report size 0 through stat; a seek-to-end probe would be needed.
      // Ferry reads regular files here; devices come through connectors.
      return new FileSource(fh, path, st.size);
    } catch (err) {
      await fh.close();
      throw toFerryError(err);
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(offset, buf);
    return buf;
  }

  async readInto(offset: number, buf: Buffer): Promise<void> {
    const length = buf.length;
    checkRead(this.name, this.size, offset, length);
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        ({ bytesRead: n } = await this.#fh.read(buf, done, length - done, offset + done));
      } catch (err) {
        throw toFerryError(err);
      }
      if (n === 0) {
        // The file shrank after open: same outcome as a truncated image.
        throw new ImageTruncatedError(`${this.name}: file ended at ${offset + done}`, {
          source: this.name,
          offset: offset + done,
        });
      }
      done += n;
    }
  }

  async close(): Promise<void> {
    await this.#fh.close();
  }
}
