/**
 * zstd for chunks and objects (zstd-napi, native). Compression is skipped when it does not
 * pay (saves less than 1/32 of the input): random data costs one fast failed attempt and
 * is stored raw. Decompression always writes into a buffer of the exact expected size, so
 * a frame that claims more (a bomb, or corruption) fails instead of allocating.
 */
import { createRequire } from 'node:module';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { StoreCorruptError } from '../../errors/index.js';
import { ZSTD_LEVEL } from '../layout.js';

const require = createRequire(import.meta.url);
const zstd = require('zstd-napi/binding.js') as typeof ZstdBinding;

export const COMPRESSION_NONE = 0;
export const COMPRESSION_ZSTD = 1;
export type Compression = typeof COMPRESSION_NONE | typeof COMPRESSION_ZSTD;

let cctx: InstanceType<typeof zstd.CCtx> | undefined;
let dctx: InstanceType<typeof zstd.DCtx> | undefined;
let scratch = Buffer.alloc(0);

/**
 * zstd(data) when it saves at least 1/32, else data itself. The compressed payload is a
 * view of a scratch buffer, valid only until the next call (use it, or copy it, at once).
 */
export function compressView(
  data: Buffer,
  level = ZSTD_LEVEL,
): { payload: Buffer; compression: Compression } {
  cctx ??= new zstd.CCtx();
  const bound = zstd.compressBound(data.length);
  if (scratch.length < bound) scratch = Buffer.allocUnsafe(bound);
  const n = cctx.compress(scratch, data, level);
  if (n > data.length - (data.length >> 5)) return { payload: data, compression: COMPRESSION_NONE };
  return { payload: scratch.subarray(0, n), compression: COMPRESSION_ZSTD };
}

/** Like {@link compressView}, with a payload of its own. */
export function compressIfWorth(
  data: Buffer,
  level = ZSTD_LEVEL,
): { payload: Buffer; compression: Compression } {
  const r = compressView(data, level);
  return r.compression === COMPRESSION_NONE ? r : { ...r, payload: Buffer.from(r.payload) };
}

/** Inflates `payload` to exactly `rawLength` bytes or throws FERRY_STORE_CORRUPT. */
export function decompressExact(payload: Buffer, rawLength: number, what: string): Buffer {
  dctx ??= new zstd.DCtx();
  const out = Buffer.allocUnsafe(rawLength);
  let n: number;
  try {
    n = dctx.decompress(out, payload);
  } catch (err) {
    throw new StoreCorruptError(`${what}: zstd data does not decompress to ${rawLength} bytes`, {
      object: what,
      rawLength,
      reason: (err as Error).message,
    });
  }
  if (n !== rawLength) {
    throw new StoreCorruptError(`${what}: zstd data decompresses to ${n} bytes, expected ${rawLength}`, {
      object: what,
      rawLength,
      actual: n,
    });
  }
  return out;
}
