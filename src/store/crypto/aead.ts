/**
 * AES-256-GCM, the one cipher of the store: `nonce (12) ‖ ciphertext ‖ tag (16)`.
 * Nonces are random (see docs/store.md for the 2^32-messages-per-key bound). Opening
 * never returns bytes whose tag does not verify: it throws FERRY_STORE_CORRUPT.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { InternalError, StoreCorruptError } from '../../errors/index.js';

export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;
const CIPHER = 'aes-256-gcm';

export function seal(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  if (key.length !== 32) throw new InternalError('AES-256-GCM needs a 32-byte key');
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv(CIPHER, key, nonce);
  c.setAAD(aad);
  const out = Buffer.allocUnsafe(plaintext.length + SEAL_OVERHEAD);
  nonce.copy(out, 0);
  let n = NONCE_BYTES;
  n += c.update(plaintext).copy(out, n);
  n += c.final().copy(out, n);
  c.getAuthTag().copy(out, n);
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
  const d = createDecipheriv(CIPHER, key, sealed.subarray(0, NONCE_BYTES));
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
