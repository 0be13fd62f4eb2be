/**
 * The repository config: the one plaintext object besides key slots. It is needed before
 * unlocking (the repository id is part of every slot's AAD), and authenticated after:
 * `mac` = HMAC-SHA256(macKey, the canonical JSON of the other fields).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { StoreCorruptError, StoreUnsupportedError } from '../../errors/index.js';
import { hmac } from '../crypto/keys.js';
import {
  isPowerOfTwo,
  MAX_BLOCK_SIZE,
  MAX_FANOUT,
  MIN_BLOCK_SIZE,
  MIN_FANOUT,
  REPO_VERSION,
} from '../layout.js';

export interface RepoConfig {
  readonly version: number;
  readonly id: string;
  readonly created: string;
  readonly blockSize: number;
  readonly fanout: number;
  readonly chunkId: 'hmac-sha256(sha256)';
  readonly cipher: 'aes-256-gcm';
  readonly compression: 'zstd';
}

export function newConfig(blockSize: number, fanout: number): RepoConfig {
  return {
    version: REPO_VERSION,
    id: randomBytes(16).toString('hex'),
    created: new Date().toISOString(),
    blockSize,
    fanout,
    chunkId: 'hmac-sha256(sha256)',
    cipher: 'aes-256-gcm',
    compression: 'zstd',
  };
}

function canonical(c: RepoConfig): string {
  const { version, id, created, blockSize, fanout, chunkId, cipher, compression } = c;
  return JSON.stringify({ version, id, created, blockSize, fanout, chunkId, cipher, compression });
}

export function encodeConfig(c: RepoConfig, macKey: Buffer): Buffer {
  const mac = hmac(macKey, canonical(c)).toString('hex');
  return Buffer.from(JSON.stringify({ ...JSON.parse(canonical(c)), mac }, null, 2) + '\n');
}

/** Parses (not yet authenticated: call {@link verifyConfig} once the keys are known). */
export function decodeConfig(buf: Buffer, location: string): RepoConfig & { mac: string } {
  const bad = (field: string): never => {
    throw new StoreCorruptError(`${location}: invalid config ${field}`, { field });
  };
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
  } catch {
    return bad('JSON');
  }
  if (typeof v !== 'object' || v === null) bad('JSON');
  if (v.version !== REPO_VERSION) {
    throw new StoreUnsupportedError(`${location}: repository version ${String(v.version)} is not supported`, {
      version: String(v.version),
      supported: REPO_VERSION,
    });
  }
  if (typeof v.id !== 'string' || !/^[0-9a-f]{32}$/.test(v.id)) bad('id');
  if (typeof v.created !== 'string') bad('created');
  const bs = v.blockSize as number;
  if (!isPowerOfTwo(bs) || bs < MIN_BLOCK_SIZE || bs > MAX_BLOCK_SIZE) bad('blockSize');
  const f = v.fanout as number;
  if (!isPowerOfTwo(f) || f < MIN_FANOUT || f > MAX_FANOUT) bad('fanout');
  if (v.chunkId !== 'hmac-sha256(sha256)' || v.cipher !== 'aes-256-gcm' || v.compression !== 'zstd') {
    throw new StoreUnsupportedError(`${location}: unknown chunk id, cipher or compression`, {
      chunkId: String(v.chunkId),
      cipher: String(v.cipher),
      compression: String(v.compression),
    });
  }
  if (typeof v.mac !== 'string' || !/^[0-9a-f]{64}$/.test(v.mac)) bad('mac');
  return v as unknown as RepoConfig & { mac: string };
}

export function verifyConfig(c: RepoConfig & { mac: string }, macKey: Buffer, location: string): RepoConfig {
  const expected = hmac(macKey, canonical(c));
  if (!timingSafeEqual(expected, Buffer.from(c.mac, 'hex'))) {
    throw new StoreCorruptError(`${location}: config authentication failed (the config was altered)`, {
      object: 'config',
    });
  }
  const { mac: _mac, ...rest } = c;
  return Object.freeze(rest);
}
