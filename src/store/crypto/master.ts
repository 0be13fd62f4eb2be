/**
 * Master keys: what the user holds. A master key never encrypts data; it wraps the
 * repository key material into a key slot (docs/store.md, "Key hierarchy").
 *
 * - {@link RawMasterKey}: 32 random bytes from a key file or an environment variable.
 * - {@link PassphraseMasterKey}: a passphrase stretched with scrypt (parameters in the slot).
 * - An external KMS implements {@link MasterKey} too: `wrap` calls the KMS's Encrypt with
 *   `aad` as encryption context and returns the KMS ciphertext as `wrapped`; `unwrap`
 *   calls Decrypt. The repository never sees the KMS key.
 */
import { hkdfSync, randomBytes, scrypt as scryptCb } from 'node:crypto';
import { InvalidArgumentError, StoreCorruptError, StoreTooLargeError } from '../../errors/index.js';
import { open, seal } from './aead.js';

export interface ScryptParams {
  readonly name: 'scrypt';
  readonly N: number;
  readonly r: number;
  readonly p: number;
  /** base64 */
  readonly salt: string;
}

/** What a master key puts into a slot (besides the slot's id, kind and dates). */
export interface SlotSecret {
  readonly kdf?: ScryptParams;
  /** base64 of the wrapped key material (AES-256-GCM, or a KMS ciphertext). */
  readonly wrapped: string;
  /** Provider-specific plain data (e.g. a KMS key id), never secret. */
  readonly provider?: Readonly<Record<string, string>>;
}

export interface MasterKey {
  /** Slot kind this key opens: 'key', 'passphrase', or a KMS provider's name. */
  readonly kind: string;
  wrap(material: Buffer, aad: Buffer): Promise<SlotSecret>;
  /** The material, or undefined when this key does not open the slot. */
  unwrap(secret: SlotSecret, aad: Buffer): Promise<Buffer | undefined>;
}

export const MASTER_KEY_BYTES = 32;

export class RawMasterKey implements MasterKey {
  readonly kind = 'key';
  readonly #kek: Buffer;

  constructor(key: Buffer) {
    if (key.length !== MASTER_KEY_BYTES) {
      throw new InvalidArgumentError(`a master key is ${MASTER_KEY_BYTES} bytes, got ${key.length}`);
    }
    this.#kek = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'ferry-store/v1/kek', 32));
  }

  static generate(): { key: Buffer; master: RawMasterKey } {
    const key = randomBytes(MASTER_KEY_BYTES);
    return { key, master: new RawMasterKey(key) };
  }

  async wrap(material: Buffer, aad: Buffer): Promise<SlotSecret> {
    return { wrapped: seal(this.#kek, material, aad).toString('base64') };
  }

  async unwrap(secret: SlotSecret, aad: Buffer): Promise<Buffer | undefined> {
    return tryOpen(this.#kek, secret.wrapped, aad);
  }
}

/** scrypt defaults: N = 2^15, r = 8, p = 1 — 32 MiB and ≈ 100 ms per unlock. */
export const SCRYPT_DEFAULTS = { N: 1 << 15, r: 8, p: 1 } as const;
/** Caps on parameters read from a slot, so a hostile slot cannot exhaust memory or time. */
const SCRYPT_MAX = { N: 1 << 20, r: 32, p: 16, memory: 1024 * 1024 * 1024 } as const;

export class PassphraseMasterKey implements MasterKey {
  readonly kind = 'passphrase';
  readonly #passphrase: string;
  readonly #params: { N: number; r: number; p: number };

  constructor(passphrase: string, params: { N: number; r: number; p: number } = SCRYPT_DEFAULTS) {
    if (passphrase.length === 0) throw new InvalidArgumentError('the passphrase is empty');
    this.#passphrase = passphrase;
    this.#params = params;
  }

  async wrap(material: Buffer, aad: Buffer): Promise<SlotSecret> {
    const salt = randomBytes(16).toString('base64');
    const kdf: ScryptParams = { name: 'scrypt', ...this.#params, salt };
    const kek = await deriveScrypt(this.#passphrase, kdf);
    return { kdf, wrapped: seal(kek, material, aad).toString('base64') };
  }

  async unwrap(secret: SlotSecret, aad: Buffer): Promise<Buffer | undefined> {
    if (!secret.kdf) throw new StoreCorruptError('passphrase key slot without scrypt parameters');
    return tryOpen(await deriveScrypt(this.#passphrase, checkScrypt(secret.kdf)), secret.wrapped, aad);
  }
}

function checkScrypt(kdf: ScryptParams): ScryptParams {
  const { N, r, p } = kdf;
  const ints = [N, r, p].every((v) => Number.isSafeInteger(v) && v > 0);
  if (kdf.name !== 'scrypt' || !ints || (N & (N - 1)) !== 0 || N < 2 || typeof kdf.salt !== 'string') {
    throw new StoreCorruptError('key slot has invalid scrypt parameters', { N, r, p });
  }
  if (N > SCRYPT_MAX.N || r > SCRYPT_MAX.r || p > SCRYPT_MAX.p || 128 * N * r * p > SCRYPT_MAX.memory) {
    throw new StoreTooLargeError('key slot asks for scrypt parameters beyond the limit', {
      N,
      r,
      p,
      limitN: SCRYPT_MAX.N,
    });
  }
  return kdf;
}

function deriveScrypt(passphrase: string, kdf: ScryptParams): Promise<Buffer> {
  const salt = Buffer.from(kdf.salt, 'base64');
  const maxmem = 128 * kdf.N * kdf.r * (kdf.p + 1) + (1 << 20);
  return new Promise((resolve, reject) => {
    scryptCb(passphrase, salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

function tryOpen(kek: Buffer, wrapped: string, aad: Buffer): Buffer | undefined {
  try {
    return open(kek, Buffer.from(wrapped, 'base64'), aad, 'key slot');
  } catch {
    return undefined; // a wrong key and a damaged slot look the same: try the next slot
  }
}

/**
 * Parses a master key written as 32 raw bytes, 64 hex digits or base64 (what
 * `store init --new-key-file` writes, or `openssl rand -hex 32`).
 */
export function parseMasterKey(data: Buffer | string, what: string): RawMasterKey {
  if (Buffer.isBuffer(data) && data.length === MASTER_KEY_BYTES) return new RawMasterKey(data);
  const text = (Buffer.isBuffer(data) ? data.toString('utf8') : data).trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return new RawMasterKey(Buffer.from(text, 'hex'));
  if (/^[A-Za-z0-9+/]{43}=?$/.test(text)) {
    const key = Buffer.from(text, 'base64');
    if (key.length === MASTER_KEY_BYTES) return new RawMasterKey(key);
  }
  throw new InvalidArgumentError(
    `${what} is not a master key (32 bytes: 64 hex digits, base64, or 32 raw bytes)`,
    { source: what },
  );
}

/** The text form of a new master key, for a key file. */
export function formatMasterKey(key: Buffer): string {
  return `${key.toString('hex')}\n`;
}
