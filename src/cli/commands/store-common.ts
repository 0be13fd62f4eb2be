/**
 * Shared by the `store` and `images` commands: where the repository is (--repo or
 * FERRY_STORE_REPO) and which master key opens it (--key-file / --passphrase-file or the
 * FERRY_STORE_* environment variables, see docs/store.md).
 */
import { resolve } from 'node:path';
import { InvalidArgumentError } from '../../errors/index.js';
import {
  createS3Backend,
  LocalBackend,
  parseS3Url,
  Repository,
  requireMasterKey,
  type Backend,
} from '../../store/index.js';
import type { Options } from '../args.js';

export const REPO_OPTIONS = {
  repo: { type: 'string', short: 'r' },
  'key-file': { type: 'string' },
  'passphrase-file': { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies Options;

export interface RepoFlags {
  repo?: string | undefined;
  'key-file'?: string | undefined;
  'passphrase-file'?: string | undefined;
}

export const REPO_USAGE =
  '--repo DIR|s3://BUCKET/PREFIX (or FERRY_STORE_REPO) [--key-file F | --passphrase-file F]';

/**
 * A local directory, or `s3://bucket/prefix` (endpoint from FERRY_S3_ENDPOINT for MinIO /
 * Ceph RGW, region from AWS_REGION, credentials from the AWS SDK's usual chain).
 */
export async function backendFor(flags: RepoFlags): Promise<Backend> {
  const location = flags.repo ?? process.env.FERRY_STORE_REPO;
  if (!location) throw new InvalidArgumentError(`no repository: pass --repo DIR or set FERRY_STORE_REPO`);
  if (location.startsWith('s3://')) {
    const url = parseS3Url(location);
    if (!url) throw new InvalidArgumentError(`${location} is not a valid s3://bucket/prefix location`);
    const endpoint = process.env.FERRY_S3_ENDPOINT;
    return createS3Backend({
      ...url,
      ...(endpoint ? { endpoint } : {}),
      region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw new InvalidArgumentError(`${location}: repositories are local directories or s3:// locations`);
  }
  return new LocalBackend(resolve(location));
}

export async function openRepo(flags: RepoFlags): Promise<Repository> {
  const backend = await backendFor(flags);
  const master = await requireMasterKey({
    keyFile: flags['key-file'],
    passphraseFile: flags['passphrase-file'],
  });
  return Repository.open(backend, master);
}

/** Parses "--threads N" style non-negative integers. */
export function intOption(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value))
    throw new InvalidArgumentError(`${what} must be a non-negative integer, got ${value}`);
  return Number(value);
}
