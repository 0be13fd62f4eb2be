/**
 * Access keys for SigV4. Secrets are stored encrypted (AES-256-GCM under the data
 * directory's master key, the key id as associated data so a ciphertext cannot be moved
 * to another key's row); only the API's signature check ever decrypts one.
 *
 * Temporary keys (ASIA…) carry a session token and an expiry, like STS credentials: the
 * token's SHA-256 is stored, and a request must present the token to use the key.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { repositories, type AccessKeyRecord, type Database } from '../db/index.js';
import { InternalError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import { openSecret, sealSecret } from './secrets.js';
import type { Clock } from './clock.js';
import { newAccessKeyId, newSecretAccessKey, newSessionToken } from './ids.js';

/** Temporary keys live at most 12 hours (STS's default maximum for sessions is similar). */
export const MAX_TEMPORARY_KEY_MS = 12 * 3600_000;
const MAX_DESCRIPTION = 256;

export interface NewAccessKey {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: number;
}

export interface AccessKeySummary {
  readonly accessKeyId: string;
  readonly description: string;
  readonly createdAt: number;
  readonly expiresAt?: number;
  readonly revokedAt?: number;
  readonly temporary: boolean;
  readonly status: 'active' | 'revoked' | 'expired';
}

/** What the signature check needs about a key that may be used now. */
export interface ResolvedKey {
  readonly secretAccessKey: string;
  /** Present for temporary keys: the request's token must hash to this. */
  readonly sessionTokenHash?: string;
  readonly expiresAt?: number;
}

export class KeyService {
  readonly #db: Database;
  readonly #masterKey: Buffer;
  readonly #clock: Clock;

  constructor(db: Database, masterKey: Buffer, clock: Clock) {
    if (masterKey.length !== 32) throw new InternalError('master key must be 32 bytes');
    this.#db = db;
    this.#masterKey = masterKey;
    this.#clock = clock;
  }

  async create(options: { description?: string; ttlMs?: number } = {}): Promise<NewAccessKey> {
    const description = options.description ?? '';
    if (description.length > MAX_DESCRIPTION) {
      throw new InvalidArgumentError(`description longer than ${MAX_DESCRIPTION} characters`);
    }
    const temporary = options.ttlMs !== undefined;
    if (temporary && !(options.ttlMs! >= 60_000 && options.ttlMs! <= MAX_TEMPORARY_KEY_MS)) {
      throw new InvalidArgumentError('a temporary key lives between 1 minute and 12 hours', {
        ttlMs: options.ttlMs,
      });
    }
    const now = this.#clock.now();
    const accessKeyId = newAccessKeyId(temporary);
    const secretAccessKey = newSecretAccessKey();
    const sessionToken = temporary ? newSessionToken() : undefined;
    const expiresAt = temporary ? now + options.ttlMs! : undefined;
    await repositories(this.#db).keys.insert({
      accessKeyId,
      secretCiphertext: this.#seal(accessKeyId, secretAccessKey),
      sessionTokenHash: sessionToken ? sha256(sessionToken) : null,
      description,
      createdAt: now,
      expiresAt: expiresAt ?? null,
      revokedAt: null,
    });
    return {
      accessKeyId,
      secretAccessKey,
      ...(sessionToken ? { sessionToken, expiration: expiresAt } : {}),
    };
  }

  async list(): Promise<AccessKeySummary[]> {
    const now = this.#clock.now();
    return (await repositories(this.#db).keys.list()).map((k) => summarize(k, now));
  }

  async revoke(accessKeyId: string): Promise<AccessKeySummary> {
    const r = repositories(this.#db);
    const key = await r.keys.get(accessKeyId);
    if (!key)
      throw new NotFoundError(`no access key ${accessKeyId}`, { resource: 'access-key', accessKeyId });
    const now = this.#clock.now();
    if (key.revokedAt === null) await r.keys.update(accessKeyId, { revokedAt: now });
    return summarize({ ...key, revokedAt: key.revokedAt ?? now }, now);
  }

  /** The key's secret if it exists, is not revoked and has not expired. */
  async resolve(accessKeyId: string): Promise<ResolvedKey | undefined> {
    const key = await repositories(this.#db).keys.get(accessKeyId);
    if (!key || key.revokedAt !== null) return undefined;
    if (key.expiresAt !== null && key.expiresAt <= this.#clock.now()) return undefined;
    return {
      secretAccessKey: this.#open(key.accessKeyId, key.secretCiphertext),
      ...(key.sessionTokenHash ? { sessionTokenHash: key.sessionTokenHash } : {}),
      ...(key.expiresAt !== null ? { expiresAt: key.expiresAt } : {}),
    };
  }

  #seal(accessKeyId: string, secret: string): string {
    return sealSecret(this.#masterKey, `ferry-access-key:${accessKeyId}`, secret);
  }

  #open(accessKeyId: string, envelope: string): string {
    return openSecret(
      this.#masterKey,
      `ferry-access-key:${accessKeyId}`,
      envelope,
      `access key ${accessKeyId}`,
    );
  }
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Constant-time comparison of two hex digests. */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

function summarize(k: AccessKeyRecord, now: number): AccessKeySummary {
  const status =
    k.revokedAt !== null ? 'revoked' : k.expiresAt !== null && k.expiresAt <= now ? 'expired' : 'active';
  return {
    accessKeyId: k.accessKeyId,
    description: k.description,
    createdAt: k.createdAt,
    ...(k.expiresAt !== null ? { expiresAt: k.expiresAt } : {}),
    ...(k.revokedAt !== null ? { revokedAt: k.revokedAt } : {}),
    temporary: k.sessionTokenHash !== null,
    status,
  };
}
