/**
 * The CPU work of writing an image, on one batch of consecutive blocks: the same pure
 * functions run inline or in worker threads (pool.ts). Hashing comes first (every block);
 * sealing (compress + encrypt) only for the blocks the main thread found to be new.
 */
import { createHash } from 'node:crypto';
import { InternalError } from '../../errors/index.js';
import { chunkIdOf } from '../crypto/keys.js';
import { ID_BYTES } from '../layout.js';
import { SEAL_OVERHEAD, sealInto } from '../crypto/aead.js';
import { blobAad, BLOB_DATA, type SealedBlob } from './blob.js';
import { compressView, type Compression } from './compress.js';

export interface HashResult {
  /** n × 32 bytes: chunk ids, all-zero for zero blocks. */
  readonly ids: Buffer;
  /** n × 32 bytes: SHA-256 of each block (zero blocks included), for the checksum. */
  readonly digests: Buffer;
  /** 1 where the block is all zeros. */
  readonly zero: Uint8Array;
}

const ZERO_PAGE = Buffer.alloc(64 * 1024);
const zeroDigests = new Map<number, Buffer>();

/** SHA-256 of `length` zero bytes (cached per length). */
export function zeroDigest(length: number): Buffer {
  let d = zeroDigests.get(length);
  if (!d) {
    const h = createHash('sha256');
    for (let left = length; left > 0; left -= ZERO_PAGE.length) {
      h.update(ZERO_PAGE.subarray(0, Math.min(left, ZERO_PAGE.length)));
    }
    d = h.digest();
    zeroDigests.set(length, d);
  }
  return d;
}

export function isZero(buf: Buffer): boolean {
  for (let off = 0; off < buf.length; off += ZERO_PAGE.length) {
    const n = Math.min(ZERO_PAGE.length, buf.length - off);
    if (!buf.subarray(off, off + n).equals(ZERO_PAGE.subarray(0, n))) return false;
  }
  return true;
}

export function blockCount(length: number, blockSize: number): number {
  return Math.ceil(length / blockSize);
}

export function hashBlocks(idKey: Buffer, data: Buffer, blockSize: number): HashResult {
  const n = blockCount(data.length, blockSize);
  const ids = Buffer.alloc(n * ID_BYTES);
  const digests = Buffer.allocUnsafe(n * ID_BYTES);
  const zero = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const block = data.subarray(i * blockSize, Math.min((i + 1) * blockSize, data.length));
    if (isZero(block)) {
      zero[i] = 1;
      zeroDigest(block.length).copy(digests, i * ID_BYTES);
      continue;
    }
    const digest = createHash('sha256').update(block).digest();
    digest.copy(digests, i * ID_BYTES);
    chunkIdOf(idKey, digest).copy(ids, i * ID_BYTES);
  }
  return { ids, digests, zero };
}

/**
 * Seals the blocks at `picks` (indexes into the batch) with their ids from `ids`, straight
 * into `out` (reused from batch to batch: no allocation, so no page faults, per batch).
 * `out` must hold every pick uncompressed plus SEAL_OVERHEAD each.
 */
export function sealBlocks(
  encKey: Buffer,
  data: Buffer,
  blockSize: number,
  picks: readonly number[],
  ids: Buffer,
  out: Buffer,
): PackedBlobs {
  const block = (i: number) => data.subarray(i * blockSize, Math.min((i + 1) * blockSize, data.length));
  const meta = new Uint32Array(picks.length * 3);
  const outIds = Buffer.allocUnsafe(picks.length * ID_BYTES);
  let at = 0;
  picks.forEach((b, j) => {
    const raw = block(b);
    if (at + raw.length + SEAL_OVERHEAD > out.length)
      throw new InternalError(
        `seal output buffer too small: ${at}+${raw.length} of ${out.length} (picks ${picks.length}, data ${data.length})`,
      );
    const { payload, compression } = compressView(raw);
    const id = ids.subarray(b * ID_BYTES, (b + 1) * ID_BYTES);
    outIds.set(id, j * ID_BYTES);
    const n = sealInto(encKey, payload, blobAad(BLOB_DATA, compression, raw.length, id), out, at);
    meta[j * 3] = n;
    meta[j * 3 + 1] = raw.length;
    meta[j * 3 + 2] = compression;
    at += n;
  });
  return { bytes: out.subarray(0, at), meta, ids: outIds };
}

/** Sealed blobs flattened for a transfer between threads (one ArrayBuffer, no copies). */
export interface PackedBlobs {
  readonly bytes: Buffer;
  /** Per blob: stored length, raw length, compression. */
  readonly meta: Uint32Array;
  readonly ids: Buffer;
}

export function unpackBlobs(p: PackedBlobs): SealedBlob[] {
  const out: SealedBlob[] = [];
  let off = 0;
  for (let i = 0; i < p.meta.length / 3; i++) {
    const length = p.meta[i * 3] as number;
    out.push({
      id: p.ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES),
      type: BLOB_DATA,
      compression: p.meta[i * 3 + 2] as Compression,
      length,
      rawLength: p.meta[i * 3 + 1] as number,
      bytes: p.bytes.subarray(off, off + length),
    });
    off += length;
  }
  return out;
}
