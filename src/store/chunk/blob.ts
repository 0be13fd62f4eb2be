/**
 * Blobs: one chunk as stored in a pack. `nonce ‖ AES-256-GCM(payload) ‖ tag`, with the
 * chunk's type, compression, raw length and id bound into the tag (docs/store.md):
 *   aad = "FRY1" ‖ type u8 ‖ compression u8 ‖ rawLength u32 LE ‖ id (32)
 */
import { StoreCorruptError } from '../../errors/index.js';
import { open, seal, SEAL_OVERHEAD } from '../crypto/aead.js';
import { ID_BYTES, MAX_BLOCK_SIZE, MAX_FANOUT } from '../layout.js';
import {
  COMPRESSION_NONE,
  COMPRESSION_ZSTD,
  compressIfWorth,
  decompressExact,
  type Compression,
} from './compress.js';

export const BLOB_DATA = 0;
export const BLOB_TREE = 1;
export type BlobType = typeof BLOB_DATA | typeof BLOB_TREE;

/** Largest raw content of one blob: a data block, or a tree node of MAX_FANOUT references. */
export const MAX_BLOB_RAW_BYTES = Math.max(MAX_BLOCK_SIZE, MAX_FANOUT * ID_BYTES);
export const MAX_BLOB_STORED_BYTES = MAX_BLOB_RAW_BYTES + SEAL_OVERHEAD;

/** Where a blob is and what it holds: an index entry and a pack header entry. */
export interface BlobEntry {
  readonly id: Buffer;
  readonly type: BlobType;
  readonly compression: Compression;
  /** Stored (encrypted) length. */
  readonly length: number;
  readonly rawLength: number;
}

export interface SealedBlob extends BlobEntry {
  readonly bytes: Buffer;
}

const MAGIC = Buffer.from('FRY1');

export function blobAad(type: BlobType, compression: Compression, rawLength: number, id: Buffer): Buffer {
  const aad = Buffer.allocUnsafe(4 + 1 + 1 + 4 + ID_BYTES);
  MAGIC.copy(aad, 0);
  aad[4] = type;
  aad[5] = compression;
  aad.writeUInt32LE(rawLength, 6);
  id.copy(aad, 10);
  return aad;
}

export function sealBlob(
  encKey: Buffer,
  type: BlobType,
  id: Buffer,
  raw: Buffer,
  compress = true,
): SealedBlob {
  const { payload, compression } = compress
    ? compressIfWorth(raw)
    : { payload: raw, compression: COMPRESSION_NONE as Compression };
  const bytes = seal(encKey, payload, blobAad(type, compression, raw.length, id));
  return { id, type, compression, length: bytes.length, rawLength: raw.length, bytes };
}

/** Authenticates, decrypts and inflates a blob; never returns unverified bytes. */
export function openBlob(encKey: Buffer, entry: BlobEntry, bytes: Buffer, what: string): Buffer {
  checkEntry(entry, what);
  if (bytes.length !== entry.length) {
    throw new StoreCorruptError(`${what}: blob is ${bytes.length} bytes, the index says ${entry.length}`, {
      object: what,
    });
  }
  const payload = open(
    encKey,
    bytes,
    blobAad(entry.type, entry.compression, entry.rawLength, entry.id),
    what,
  );
  if (entry.compression === COMPRESSION_NONE) {
    if (payload.length !== entry.rawLength) {
      throw new StoreCorruptError(`${what}: stored ${payload.length} bytes, expected ${entry.rawLength}`);
    }
    return payload;
  }
  return decompressExact(payload, entry.rawLength, what);
}

/** Validates an entry read from an index or a pack header (untrusted until then). */
export function checkEntry(entry: BlobEntry, what: string): void {
  const bad = (field: string, value: number) => {
    throw new StoreCorruptError(`${what}: invalid ${field} ${value}`, { object: what, field, value });
  };
  if (entry.type !== BLOB_DATA && entry.type !== BLOB_TREE) bad('blob type', entry.type);
  if (entry.compression !== COMPRESSION_NONE && entry.compression !== COMPRESSION_ZSTD) {
    bad('compression', entry.compression);
  }
  if (entry.rawLength < 1 || entry.rawLength > MAX_BLOB_RAW_BYTES) bad('raw length', entry.rawLength);
  if (entry.length < SEAL_OVERHEAD || entry.length > MAX_BLOB_STORED_BYTES)
    bad('stored length', entry.length);
  if (entry.id.length !== ID_BYTES) bad('id length', entry.id.length);
}
