/**
 * Pack files (docs/store.md, "Pack files"):
 *
 *   offset 0   blob 0 ‖ blob 1 ‖ … ‖ blob n−1        each nonce ‖ ciphertext ‖ tag
 *   H          header = nonce ‖ GCM(entries, aad = "ferry-store/v1/pack-header") ‖ tag
 *   end − 12   header length (u32 LE) ‖ "FRYPACK1"
 *
 *   entry (42 bytes): type u8 ‖ compression u8 ‖ stored length u32 LE ‖ raw length u32 LE ‖ id (32)
 *
 * Offsets are implicit (running sum of lengths) and must end exactly at H. The pack id is
 * the SHA-256 of the sealed header and the trailer (see {@link packIdOf}).
 */
import { createHash } from 'node:crypto';
import { StoreCorruptError, StoreTooLargeError } from '../../errors/index.js';
import { checkEntry, type BlobEntry, type BlobType, type SealedBlob } from '../chunk/blob.js';
import type { Compression } from '../chunk/compress.js';
import { open, seal, SEAL_OVERHEAD } from '../crypto/aead.js';
import { ID_BYTES, MAX_PACK_BYTES, MAX_PACK_ENTRIES } from '../layout.js';

export const PACK_MAGIC = Buffer.from('FRYPACK1');
export const TRAILER_BYTES = 4 + PACK_MAGIC.length;
export const ENTRY_BYTES = 1 + 1 + 4 + 4 + ID_BYTES;
const HEADER_AAD = Buffer.from('ferry-store/v1/pack-header');
/** Largest sealed header a reader accepts. */
export const MAX_HEADER_BYTES = MAX_PACK_ENTRIES * ENTRY_BYTES + SEAL_OVERHEAD;

export interface PackEntry extends BlobEntry {
  readonly offset: number;
}

export interface BuiltPack {
  readonly id: string;
  /** The pack's bytes, in order (blobs, header, trailer): written without concatenating. */
  readonly parts: readonly Buffer[];
  readonly size: number;
  readonly entries: readonly PackEntry[];
}

export function buildPack(encKey: Buffer, blobs: readonly SealedBlob[]): BuiltPack {
  const header = Buffer.allocUnsafe(blobs.length * ENTRY_BYTES);
  const entries: PackEntry[] = [];
  let offset = 0;
  blobs.forEach((b, i) => {
    const at = i * ENTRY_BYTES;
    header[at] = b.type;
    header[at + 1] = b.compression;
    header.writeUInt32LE(b.length, at + 2);
    header.writeUInt32LE(b.rawLength, at + 6);
    b.id.copy(header, at + 10);
    entries.push({
      id: b.id,
      type: b.type,
      compression: b.compression,
      length: b.length,
      rawLength: b.rawLength,
      offset,
    });
    offset += b.length;
  });
  const sealedHeader = seal(encKey, header, HEADER_AAD);
  const trailer = Buffer.allocUnsafe(TRAILER_BYTES);
  trailer.writeUInt32LE(sealedHeader.length, 0);
  PACK_MAGIC.copy(trailer, 4);
  const parts = [...joinContiguous(blobs.map((b) => b.bytes)), sealedHeader, trailer];
  return {
    id: packIdOf(sealedHeader, trailer),
    parts,
    size: offset + sealedHeader.length + TRAILER_BYTES,
    entries,
  };
}

/**
 * A pack's name: SHA-256 of its sealed header and trailer. Hashing only the tail is
 * enough: every byte before it belongs to a blob whose GCM tag authenticates it, and the
 * header (itself authenticated, with a random nonce, so names never repeat) lists every
 * blob with its length and id. Hashing 16 MiB per pack on the writer's main thread is
 * what this saves.
 */
export function packIdOf(sealedHeader: Buffer, trailer: Buffer): string {
  return createHash('sha256').update(sealedHeader).update(trailer).digest('hex');
}

/** Where the sealed header is, from the trailer (the last TRAILER_BYTES of the pack). */
export function parseTrailer(
  trailer: Buffer,
  packSize: number,
  what: string,
): { offset: number; length: number } {
  if (packSize < TRAILER_BYTES + SEAL_OVERHEAD || trailer.length !== TRAILER_BYTES) {
    throw new StoreCorruptError(`${what}: ${packSize} bytes is too short for a pack`, {
      object: what,
      size: packSize,
    });
  }
  if (packSize > MAX_PACK_BYTES) {
    throw new StoreTooLargeError(`${what}: pack of ${packSize} bytes exceeds the limit`, {
      object: what,
      size: packSize,
      limit: MAX_PACK_BYTES,
    });
  }
  if (!trailer.subarray(4).equals(PACK_MAGIC)) {
    throw new StoreCorruptError(`${what}: bad pack trailer magic (truncated or not a pack)`, {
      object: what,
    });
  }
  const length = trailer.readUInt32LE(0);
  if (length < SEAL_OVERHEAD || length > MAX_HEADER_BYTES || length > packSize - TRAILER_BYTES) {
    throw new StoreCorruptError(`${what}: invalid pack header length ${length}`, { object: what, length });
  }
  return { offset: packSize - TRAILER_BYTES - length, length };
}

/** Decrypts and validates a pack header; `headerOffset` is where the blobs must end. */
export function decodeHeader(
  encKey: Buffer,
  sealed: Buffer,
  headerOffset: number,
  what: string,
): PackEntry[] {
  const plain = open(encKey, sealed, HEADER_AAD, `${what} header`);
  if (plain.length % ENTRY_BYTES !== 0 || plain.length / ENTRY_BYTES > MAX_PACK_ENTRIES) {
    throw new StoreCorruptError(`${what}: pack header of ${plain.length} bytes is not a list of entries`, {
      object: what,
    });
  }
  const entries: PackEntry[] = [];
  let offset = 0;
  for (let at = 0; at < plain.length; at += ENTRY_BYTES) {
    const e: PackEntry = {
      type: plain[at] as BlobType,
      compression: plain[at + 1] as Compression,
      length: plain.readUInt32LE(at + 2),
      rawLength: plain.readUInt32LE(at + 6),
      id: Buffer.from(plain.subarray(at + 10, at + 10 + ID_BYTES)),
      offset,
    };
    checkEntry(e, what);
    entries.push(e);
    offset += e.length;
  }
  if (offset !== headerOffset) {
    throw new StoreCorruptError(`${what}: blobs end at ${offset} but the header starts at ${headerOffset}`, {
      object: what,
      blobsEnd: offset,
      headerOffset,
    });
  }
  return entries;
}

/** Merges views that follow each other in one buffer (a packer's arena) into one part. */
function joinContiguous(views: readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const v of views) {
    const last = out[out.length - 1];
    if (last && last.buffer === v.buffer && last.byteOffset + last.length === v.byteOffset) {
      out[out.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + v.length);
    } else out.push(v);
  }
  return out;
}
