/**
 * The storage seam of the image store: a flat namespace of immutable-by-convention objects.
 * Five operations and one guarantee, so a local directory and an S3-compatible bucket fit
 * behind the same interface:
 *
 * - `put` is atomic (the data may come as several buffers, written in order): readers (and a process that restarts after a crash) see the object
 *   either complete or absent, never partial. Overwriting replaces it atomically.
 * - `get` returns exactly the bytes asked for, or throws: FERRY_STORE_MISSING_CHUNK when the
 *   object does not exist, FERRY_STORE_TRUNCATED when a range passes its end.
 * - `list` walks every object whose key starts with a directory-style prefix ("data/").
 * - `delete` is idempotent (deleting a missing object is not an error).
 *
 * Keys are lowercase relative paths (`data/ab/<64 hex>`); validated by {@link checkKey} so no
 * key can escape a local root or smuggle a URL.
 */
import { InternalError, StoreMissingChunkError, StoreTruncatedError } from '../../errors/index.js';

export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
}

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

export interface Backend {
  /** Where the repository lives, for messages ("/srv/repo", "s3://bucket/prefix"). */
  readonly location: string;
  put(key: string, data: Buffer | readonly Buffer[]): Promise<void>;
  get(key: string, range?: ByteRange): Promise<Buffer>;
  /** Every object under `prefix` ("" or ending in "/"), in no particular order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  delete(key: string): Promise<void>;
  exists(key: string): Promise<boolean>;
  close(): Promise<void>;
}

const KEY_RE = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/;
const PREFIX_RE = /^([a-z0-9][a-z0-9._-]*\/)*$/;

/** Refuses keys that are not plain lowercase relative paths (a programming error). */
export function checkKey(key: string): void {
  if (!KEY_RE.test(key) || key.length > 512)
    throw new InternalError(`invalid store key ${JSON.stringify(key)}`);
}

export function checkPrefix(prefix: string): void {
  if (!PREFIX_RE.test(prefix)) throw new InternalError(`invalid store prefix ${JSON.stringify(prefix)}`);
}

export function checkRange(location: string, key: string, size: number, range: ByteRange | undefined): void {
  if (!range) return;
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new InternalError(`invalid range ${offset}+${length} of ${key}`);
  }
  if (offset + length > size) {
    throw new StoreTruncatedError(
      `${location}: ${key} has ${size} bytes, bytes ${offset}..${offset + length} were expected`,
      { key, offset, length, size },
    );
  }
}

export function byteLength(data: Buffer | readonly Buffer[]): number {
  return Buffer.isBuffer(data) ? data.length : data.reduce((s, b) => s + b.length, 0);
}

export function missingObject(location: string, key: string): never {
  throw new StoreMissingChunkError(`${location}: object ${key} does not exist`, { key });
}

/** Collects a listing (small prefixes only: keys, locks, images, gc). */
export async function listAll(backend: Backend, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of backend.list(prefix)) out.push(o);
  return out;
}
