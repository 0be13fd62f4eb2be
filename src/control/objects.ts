/**
 * Ferry's local bucket (`ferry-local`): the small files launch configurations point at
 * with S3 locations in SMS — user data, configure scripts — kept under
 * DATA_DIR/objects, one file per key. Keys are S3-like paths restricted so that none can
 * leave the directory: [A-Za-z0-9._-] segments separated by '/', no '.' or '..' segment.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../errors/index.js';

export const LOCAL_BUCKET = 'ferry-local';
/** User data and scripts: cloud-init reads them whole; EC2 caps user data at 16 KiB. */
export const MAX_OBJECT_BYTES = 1024 * 1024;
/** Listing bound: a bucket of launch files holds tens, not millions. */
const MAX_LIST = 10_000;
const KEY = /^(?!.*(?:^|\/)\.{1,2}(?:\/|$))[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;

export interface S3LocationInput {
  readonly bucket?: string;
  readonly key?: string;
}

export class LocalObjects {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async put(input: {
    bucket?: string;
    key: string;
    bodyBase64: string;
  }): Promise<{ key: string; size: number }> {
    const path = this.#path(input.bucket, input.key);
    const body = Buffer.from(input.bodyBase64, 'base64');
    if (body.length > MAX_OBJECT_BYTES) {
      throw new InvalidArgumentError(
        `object ${input.key} is ${body.length} bytes; at most ${MAX_OBJECT_BYTES}`,
        {
          member: 'bodyBase64',
        },
      );
    }
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, body, { mode: 0o600 });
    await rename(tmp, path);
    return { key: input.key, size: body.length };
  }

  async get(input: S3LocationInput): Promise<Buffer> {
    const path = this.#path(input.bucket, input.key);
    const s = await stat(path).catch(() => undefined);
    if (!s?.isFile()) {
      throw new NotFoundError(`no object ${LOCAL_BUCKET}/${input.key}`, {
        resource: 'object',
        key: input.key,
      });
    }
    if (s.size > MAX_OBJECT_BYTES) throw new InvalidArgumentError(`object ${input.key} is too large`);
    return readFile(path);
  }

  async getObject(input: { bucket?: string; key: string }) {
    const body = await this.get(input);
    return { key: input.key, size: body.length, bodyBase64: body.toString('base64') };
  }

  async delete(input: { bucket?: string; key: string }): Promise<Record<string, never>> {
    await rm(this.#path(input.bucket, input.key), { force: true });
    return {};
  }

  async list(input: { prefix?: string } = {}): Promise<{ objects: { key: string; size: number }[] }> {
    const out: { key: string; size: number }[] = [];
    const walk = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        if (out.length >= MAX_LIST) return;
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile() && !e.name.endsWith('.tmp')) {
          const key = relative(this.dir, p).split(sep).join('/');
          if (!input.prefix || key.startsWith(input.prefix)) out.push({ key, size: (await stat(p)).size });
        }
      }
    };
    await walk(this.dir);
    return { objects: out.sort((a, b) => a.key.localeCompare(b.key)) };
  }

  #path(bucket: string | undefined, key: string | undefined): string {
    if ((bucket ?? LOCAL_BUCKET) !== LOCAL_BUCKET) {
      throw new InvalidArgumentError(
        `bucket ${JSON.stringify(bucket)}: Ferry keeps launch files in its own bucket ${LOCAL_BUCKET} (ferry objects put)`,
        { member: 'bucket' },
      );
    }
    if (!key || key.length > 512 || !KEY.test(key)) {
      throw new InvalidArgumentError(
        `key ${JSON.stringify((key ?? '').slice(0, 80))}: use letters, digits, '.', '_', '-' in '/'-separated parts (no '.' or '..' parts)`,
        { member: 'key' },
      );
    }
    return join(this.dir, ...key.split('/'));
  }
}
