/**
 * The repository keys, derived from the repository key material (64 random bytes made at
 * init, stored only wrapped in key slots) with HKDF-SHA256, one key per purpose:
 *   encKey — AES-256-GCM of blobs, pack headers and objects
 *   idKey  — HMAC-SHA256 chunk ids: id = HMAC(idKey, SHA-256(content))
 *   macKey — HMAC-SHA256 of the plaintext config
 */
import { createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { InternalError } from '../../errors/index.js';

export const KEY_MATERIAL_BYTES = 64;

export interface RepoKeys {
  readonly encKey: Buffer;
  readonly idKey: Buffer;
  readonly macKey: Buffer;
}

export function newKeyMaterial(): Buffer {
  return randomBytes(KEY_MATERIAL_BYTES);
}

export function deriveKeys(material: Buffer): RepoKeys {
  if (material.length !== KEY_MATERIAL_BYTES) throw new InternalError('key material must be 64 bytes');
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), info, 32));
  return Object.freeze({
    encKey: derive('ferry-store/v1/enc'),
    idKey: derive('ferry-store/v1/id'),
    macKey: derive('ferry-store/v1/config-mac'),
  });
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

/** The chunk id of data whose SHA-256 is `digest`. */
export function chunkIdOf(idKey: Buffer, digest: Buffer): Buffer {
  return createHmac('sha256', idKey).update(digest).digest();
}

const TREE_DOMAIN = Buffer.from([1]);

/**
 * The id of a tree node: HMAC over 0x01 ‖ SHA-256(content), so a data block can never
 * share an id with a tree node, whatever bytes a guest writes.
 */
export function treeIdOf(idKey: Buffer, content: Buffer): Buffer {
  return createHmac('sha256', idKey).update(TREE_DOMAIN).update(sha256(content)).digest();
}

export function hmac(key: Buffer, data: Buffer | string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}
