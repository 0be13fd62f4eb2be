/**
 * The local back end: a repository is a directory, an object is a file.
 *
 * Atomic put: write `tmp/<random>` (O_EXCL), fsync it, rename it over the final name, fsync
 * the directory. A crash (even a power loss, given a journaling file system) leaves either
 * the old state or the new object complete; stray temp files are ignored by `list` and
 * removed by {@link LocalBackend.cleanTemp}.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { toFerryError } from '../../../errors/index.js';
import {
  checkKey,
  checkPrefix,
  checkRange,
  missingObject,
  type Backend,
  type ByteRange,
  type ObjectInfo,
} from '../backend.js';

const TMP_DIR = 'tmp';

export class LocalBackend implements Backend {
  readonly location: string;
  readonly #root: string;
  /** Directories known to exist (and to be durable in their parent). */
  readonly #dirs = new Set<string>();

  constructor(root: string) {
    this.#root = root;
    this.location = root;
  }

  get root(): string {
    return this.#root;
  }

  async put(key: string, data: Buffer | readonly Buffer[]): Promise<void> {
    checkKey(key);
    const final = join(this.#root, key);
    await this.#ensureDir(dirname(final));
    await this.#ensureDir(join(this.#root, TMP_DIR));
    const tmp = join(this.#root, TMP_DIR, `${randomBytes(8).toString('hex')}.tmp`);
    try {
      const fh = await open(tmp, 'wx', 0o600);
      try {
        const parts = Buffer.isBuffer(data) ? [data] : data;
        // One writev for the whole object (a pack is a few views of sealed batch outputs
        // plus its header and trailer); the loop only finishes a short write.
        const { bytesWritten } = await fh.writev(parts as Buffer[], 0);
        let pos = 0;
        for (const part of parts) {
          for (let done = Math.max(0, Math.min(part.length, bytesWritten - pos)); done < part.length;) {
            const { bytesWritten: n } = await fh.write(part, done, part.length - done, pos + done);
            done += n;
          }
          pos += part.length;
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, final);
      await syncDir(dirname(final));
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      throw toFerryError(err);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    checkKey(key);
    const path = join(this.#root, key);
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') missingObject(this.location, key);
      throw toFerryError(err);
    }
    try {
      const size = (await fh.stat()).size;
      checkRange(this.location, key, size, range);
      const offset = range?.offset ?? 0;
      const length = range?.length ?? size;
      const buf = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) checkRange(this.location, key, offset + done, { offset, length });
        done += bytesRead;
      }
      return buf;
    } catch (err) {
      throw toFerryError(err);
    } finally {
      await fh.close();
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkPrefix(prefix);
    yield* this.#walk(prefix);
  }

  async *#walk(prefix: string): AsyncGenerator<ObjectInfo> {
    let entries;
    try {
      entries = await readdir(join(this.#root, prefix), { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw toFerryError(err);
    }
    for (const e of entries) {
      if (prefix === '' && e.name === TMP_DIR) continue;
      const key = prefix + e.name;
      if (e.isDirectory()) {
        yield* this.#walk(`${key}/`);
      } else if (e.isFile() && !e.name.endsWith('.tmp')) {
        try {
          yield { key, size: (await stat(join(this.#root, key))).size };
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw toFerryError(err);
        }
      }
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    const path = join(this.#root, key);
    try {
      await unlink(path);
      await syncDir(dirname(path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw toFerryError(err);
    }
  }

  async exists(key: string): Promise<boolean> {
    checkKey(key);
    try {
      return (await stat(join(this.#root, key))).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw toFerryError(err);
    }
  }

  /** Removes temporary files left by crashed writers (older than `olderThanMs`). */
  async cleanTemp(olderThanMs = 24 * 3600 * 1000): Promise<number> {
    let n = 0;
    const dir = join(this.#root, TMP_DIR);
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      const p = join(dir, name);
      const st = await stat(p).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > olderThanMs) {
        await rm(p, { force: true });
        n++;
      }
    }
    return n;
  }

  async close(): Promise<void> {}

  async #ensureDir(dir: string): Promise<void> {
    if (this.#dirs.has(dir)) return;
    try {
      const made = await mkdir(dir, { recursive: true });
      // A new directory is durable only once its parent's entry is: fsync each new level.
      if (made !== undefined) {
        for (let d = dir; d.length >= made.length; d = dirname(d)) await syncDir(dirname(d));
      }
    } catch (err) {
      throw toFerryError(err);
    }
    this.#dirs.add(dir);
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
