/**
 * Pack verification for `check`: the header of every pack (metadata check), or every byte
 * (`--read-data`): the pack hashes to its name, every blob authenticates, inflates to its
 * raw length and hashes to its chunk id.
 */
import { FerryError, StoreCorruptError, StoreTooLargeError } from '../../errors/index.js';
import { BLOB_DATA, openBlob } from '../chunk/blob.js';
import { chunkIdOf, sha256, treeIdOf } from '../crypto/keys.js';
import { MAX_PACK_BYTES, packKey } from '../layout.js';
import { decodeHeader, packIdOf, parseTrailer, TRAILER_BYTES, type PackEntry } from '../pack/format.js';
import type { Repository } from '../repo/repository.js';

/** Reads a pack's trailer and header with two ranged reads. */
export async function readPackHeader(repo: Repository, packId: string, size: number): Promise<PackEntry[]> {
  const key = packKey(packId);
  const trailer = await repo.backend.get(key, {
    offset: Math.max(0, size - TRAILER_BYTES),
    length: Math.min(size, TRAILER_BYTES),
  });
  const where = parseTrailer(trailer, size, key);
  const sealed = await repo.backend.get(key, where);
  return decodeHeader(repo.keys.encKey, sealed, where.offset, key);
}

/** Compares the index's entries of a pack with its header; returns problems. */
export function compareEntries(indexed: readonly PackEntry[], header: readonly PackEntry[]): string[] {
  const byId = new Map(header.map((e) => [e.id.toString('hex'), e]));
  const out: string[] = [];
  for (const e of indexed) {
    const h = byId.get(e.id.toString('hex'));
    if (!h) out.push(`chunk ${e.id.toString('hex').slice(0, 16)}… is indexed but not in the pack header`);
    else if (
      h.offset !== e.offset ||
      h.length !== e.length ||
      h.rawLength !== e.rawLength ||
      h.type !== e.type ||
      h.compression !== e.compression
    ) {
      out.push(`chunk ${e.id.toString('hex').slice(0, 16)}…: index and pack header disagree`);
    }
  }
  return out;
}

export interface ReadDataResult {
  readonly blobs: number;
  readonly bytes: number;
  readonly problems: FerryError[];
}

/** Reads a whole pack and verifies every byte of it. */
export async function verifyPackData(
  repo: Repository,
  packId: string,
  size: number,
): Promise<ReadDataResult> {
  const key = packKey(packId);
  if (size > MAX_PACK_BYTES) {
    throw new StoreTooLargeError(`${key}: ${size} bytes exceeds the pack size limit`, {
      object: key,
      limit: MAX_PACK_BYTES,
    });
  }
  const bytes = await repo.backend.get(key);
  const trailer = bytes.subarray(Math.max(0, bytes.length - TRAILER_BYTES));
  const where = parseTrailer(trailer, bytes.length, key);
  if (packIdOf(bytes.subarray(where.offset, where.offset + where.length), trailer) !== packId) {
    throw new StoreCorruptError(`${key}: header does not hash to the pack's name (altered bytes)`, {
      object: key,
    });
  }
  const entries = decodeHeader(
    repo.keys.encKey,
    bytes.subarray(where.offset, where.offset + where.length),
    where.offset,
    key,
  );
  const problems: FerryError[] = [];
  for (const e of entries) {
    const what = `${key} chunk ${e.id.toString('hex').slice(0, 16)}…`;
    try {
      const raw = openBlob(repo.keys.encKey, e, bytes.subarray(e.offset, e.offset + e.length), what);
      const id =
        e.type === BLOB_DATA ? chunkIdOf(repo.keys.idKey, sha256(raw)) : treeIdOf(repo.keys.idKey, raw);
      if (!id.equals(e.id))
        throw new StoreCorruptError(`${what}: content does not hash to its chunk id`, { object: key });
    } catch (err) {
      if (!FerryError.is(err)) throw err;
      problems.push(err);
    }
  }
  return { blobs: entries.length, bytes: bytes.length, problems };
}
