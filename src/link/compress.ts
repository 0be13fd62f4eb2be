/**
 * Compression of link bodies (disk data on its way to the server): zstd at a fast level
 * (the link is usually slower than one core's zstd), skipped when it saves under 1/16.
 * Inflation writes into a buffer of the declared size, itself capped by MAX_BODY, so a
 * frame cannot inflate into more memory than a plain one could use.
 */
import { createRequire } from 'node:module';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { LinkProtocolError } from '../errors/index.js';
import { MAX_BODY } from './frames.js';

const require = createRequire(import.meta.url);
const zstd = require('zstd-napi/binding.js') as typeof ZstdBinding;

const LEVEL = 1;
let cctx: InstanceType<typeof zstd.CCtx> | undefined;
let dctx: InstanceType<typeof zstd.DCtx> | undefined;

/** The body to send and, when compressed, its raw length. */
export function pack(body: Buffer): { body: Buffer; rawLength?: number } {
  if (body.length < 512) return { body };
  cctx ??= new zstd.CCtx();
  const out = Buffer.allocUnsafe(zstd.compressBound(body.length));
  const n = cctx.compress(out, body, LEVEL);
  if (n > body.length - (body.length >> 4)) return { body };
  return { body: out.subarray(0, n), rawLength: body.length };
}

export function unpack(body: Buffer, rawLength: unknown): Buffer {
  if (rawLength === undefined) return body;
  if (
    typeof rawLength !== 'number' ||
    !Number.isSafeInteger(rawLength) ||
    rawLength < 0 ||
    rawLength > MAX_BODY
  )
    throw new LinkProtocolError('link frame declares an invalid raw length');
  dctx ??= new zstd.DCtx();
  const out = Buffer.allocUnsafe(rawLength);
  let n: number;
  try {
    n = dctx.decompress(out, body);
  } catch (err) {
    throw new LinkProtocolError(`link body does not decompress: ${(err as Error).message}`);
  }
  if (n !== rawLength) throw new LinkProtocolError(`link body inflates to ${n} bytes, not ${rawLength}`);
  return out;
}
