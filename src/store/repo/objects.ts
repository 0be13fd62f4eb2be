/**
 * Encrypted objects (index files, records, checkpoints, locks, GC records):
 *   nonce ‖ GCM(encKey, codec u8 ‖ raw length u32 LE ‖ body, aad = "ferry-store/v1/<kind>") ‖ tag
 * codec 0 = body as is, 1 = zstd. The kind in the AAD stops an index file from being
 * accepted as a record (and so on); records also carry their own id (checked by callers).
 */
import { StoreCorruptError, StoreTooLargeError, StoreUnsupportedError } from '../../errors/index.js';
import { COMPRESSION_NONE, COMPRESSION_ZSTD, compressIfWorth, decompressExact } from '../chunk/compress.js';
import { open, seal, SEAL_OVERHEAD } from '../crypto/aead.js';
import { MAX_OBJECT_BYTES } from '../layout.js';

export type ObjectKind = 'index' | 'image' | 'staging' | 'lock' | 'gc';

const aadOf = (kind: ObjectKind) => Buffer.from(`ferry-store/v1/${kind}`);

export function encodeObject(encKey: Buffer, kind: ObjectKind, body: Buffer): Buffer {
  const { payload, compression } =
    body.length >= 256 ? compressIfWorth(body) : { payload: body, compression: COMPRESSION_NONE };
  const plain = Buffer.allocUnsafe(5 + payload.length);
  plain[0] = compression;
  plain.writeUInt32LE(body.length, 1);
  payload.copy(plain, 5);
  return seal(encKey, plain, aadOf(kind));
}

export function decodeObject(encKey: Buffer, kind: ObjectKind, sealed: Buffer, what: string): Buffer {
  if (sealed.length > MAX_OBJECT_BYTES + SEAL_OVERHEAD + 5) {
    throw new StoreTooLargeError(`${what}: object of ${sealed.length} bytes exceeds the limit`, {
      object: what,
      limit: MAX_OBJECT_BYTES,
    });
  }
  const plain = open(encKey, sealed, aadOf(kind), what);
  if (plain.length < 5) throw new StoreCorruptError(`${what}: object too short`, { object: what });
  const codec = plain[0];
  const rawLength = plain.readUInt32LE(1);
  if (rawLength > MAX_OBJECT_BYTES) {
    throw new StoreTooLargeError(`${what}: object body of ${rawLength} bytes exceeds the limit`, {
      object: what,
      limit: MAX_OBJECT_BYTES,
    });
  }
  const payload = plain.subarray(5);
  if (codec === COMPRESSION_NONE) {
    if (payload.length !== rawLength)
      throw new StoreCorruptError(`${what}: object length mismatch`, { object: what });
    return payload;
  }
  if (codec === COMPRESSION_ZSTD) return decompressExact(payload, rawLength, what);
  throw new StoreUnsupportedError(`${what}: unknown object codec ${codec}`, { object: what, codec });
}

export function parseJson(body: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw new StoreCorruptError(`${what}: not valid JSON`, { object: what });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new StoreCorruptError(`${what}: not a JSON object`, { object: what });
  }
  return v as Record<string, unknown>;
}
