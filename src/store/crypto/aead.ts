/**
 * AES-256-GCM, the one cipher of the store: `nonce (12) ‖ ciphertext ‖ tag (16)`.
 * Nonces are random (see docs/store.md for the 2^32-messages-per-key bound). Opening
 * never returns bytes whose tag does not verify: it throws FERRY_STORE_CORRUPT.
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  randomFillSync,
  type KeyObject,
} from 'node:crypto';
import { InternalError, StoreCorruptError } from '../../errors/index.js';

export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;
const CIPHER = 'aes-256-gcm';

// Per-call costs matter at 64 KiB chunks: a KeyObject saves the key import (~15 µs) and
// nonces come from a pre-filled random pool instead of one randomBytes call each.
const keyObjects = new WeakMap<Buffer, KeyObject>();
function keyObject(key: Buffer): KeyObject {
  let k = keyObjects.get(key);
  if (!k) {
    if (key.length !== 32) throw new InternalError('AES-256-GCM needs a 32-byte key');
    k = createSecretKey(key);
    keyObjects.set(key, k);
  }
  return k;
}

const noncePool = Buffer.alloc(NONCE_BYTES * 4096);
let noncePos = noncePool.length;
function nextNonce(): Buffer {
  if (noncePos === noncePool.length) {
    randomFillSync(noncePool);
    noncePos = 0;
  }
  noncePos += NONCE_BYTES;
  return noncePool.subarray(noncePos - NONCE_BYTES, noncePos);
}

/** Encrypts into `out` at `at` (which must have plaintext.length + SEAL_OVERHEAD bytes). */
export function sealInto(key: Buffer, plaintext: Buffer, aad: Buffer, out: Buffer, at: number): number {
  const nonce = nextNonce();
  const c = createCipheriv(CIPHER, keyObject(key), nonce);
  c.setAAD(aad);
  out.set(nonce, at);
  const body = c.update(plaintext);
  out.set(body, at + NONCE_BYTES);
  const tail = c.final(); // empty for GCM, kept for correctness
  out.set(tail, at + NONCE_BYTES + body.length);
  out.set(c.getAuthTag(), at + NONCE_BYTES + body.length + tail.length);
  return plaintext.length + SEAL_OVERHEAD;
}

export function seal(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const out = Buffer.allocUnsafe(plaintext.length + SEAL_OVERHEAD);
  sealInto(key, plaintext, aad, out, 0);
  return out;
}

/** Decrypts and authenticates; `what` names the object in the error message. */
export function open(key: Buffer, sealed: Buffer, aad: Buffer, what: string): Buffer {
  if (sealed.length < SEAL_OVERHEAD) {
    throw new StoreCorruptError(`${what}: ${sealed.length} bytes is too short to be encrypted data`, {
      object: what,
      length: sealed.length,
    });
  }
  const d = createDecipheriv(CIPHER, keyObject(key), sealed.subarray(0, NONCE_BYTES));
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const body = d.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES));
  try {
    d.final();
  } catch {
    throw new StoreCorruptError(`${what}: authentication failed (data altered, or a wrong key)`, {
      object: what,
    });
  }
  return body;
}
