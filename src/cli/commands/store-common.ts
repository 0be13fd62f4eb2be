/**
 * Shared by the `store` and `images` commands: where the repository is and which master
 * key opens it (docs/store.md, docs/control-plane.md):
 *
 *   --data-dir DIR   a `ferry server` data directory: DIR/store opened with DIR/store.key,
 *                    as the server opens it (also while it runs: readers and writers
 *                    coexist, see src/store/lock)
 *   --repo LOCATION  a repository of its own (or FERRY_STORE_REPO); key from --key-file /
 *                    --passphrase-file or the FERRY_STORE_* environment variables
 *
 * With neither, the server's default data directory (FERRY_DATA_DIR, else
 * $XDG_DATA_HOME/ferry, else ~/.local/share/ferry). --repo and --data-dir exclude each other.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { dataDir, defaultDataDir, type DataDir } from '../../control/index.js';
import {
  InvalidArgumentError,
  StoreKeyRequiredError,
  StoreNotFoundError,
  toFerryError,
} from '../../errors/index.js';
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
  'data-dir': { type: 'string' },
  'key-file': { type: 'string' },
  'passphrase-file': { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies Options;

export interface RepoFlags {
  repo?: string | undefined;
  'data-dir'?: string | undefined;
  'key-file'?: string | undefined;
  'passphrase-file'?: string | undefined;
}

export const REPO_USAGE =
  '[--data-dir DIR | --repo DIR|s3://BUCKET/PREFIX] [--key-file F | --passphrase-file F]';

/** Where the repository is; `dir` is set when it is a server data directory's store. */
export interface RepoLocation {
  readonly backend: Backend;
  readonly dir?: DataDir;
}

export async function locateRepo(
  flags: RepoFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RepoLocation> {
  if (flags.repo !== undefined && flags['data-dir'] !== undefined) {
    throw new InvalidArgumentError(
      '--repo and --data-dir exclude each other: --data-dir opens DIR/store with DIR/store.key',
    );
  }
  if (flags.repo !== undefined) return { backend: await backendAt(flags.repo) };
  if (flags['data-dir'] === undefined && env.FERRY_STORE_REPO) {
    return { backend: await backendAt(env.FERRY_STORE_REPO) };
  }
  const dir = dataDir(resolve(flags['data-dir'] ?? defaultDataDir(env)));
  return { backend: new LocalBackend(dir.storeDir), dir };
}

/**
 * A local directory, or `s3://bucket/prefix` (endpoint from FERRY_S3_ENDPOINT for MinIO /
 * Ceph RGW, region from AWS_REGION, credentials from the AWS SDK's usual chain).
 */
async function backendAt(location: string): Promise<Backend> {
  if (location === '') throw new InvalidArgumentError('--repo (or FERRY_STORE_REPO) is empty');
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

/**
 * The key file a data directory's store opens with: --key-file / --passphrase-file when
 * given (a copy kept elsewhere), else DIR/store.key. The FERRY_STORE_KEY* variables are for
 * --repo repositories and are not consulted here: the server never reads them either.
 */
export function dataDirKeyFile(flags: RepoFlags, dir: DataDir): string | undefined {
  if (flags['key-file'] !== undefined || flags['passphrase-file'] !== undefined) return flags['key-file'];
  return dir.storeKeyPath;
}

export async function openRepo(flags: RepoFlags): Promise<Repository> {
  return (await openLocatedRepo(flags)).repo;
}

/** The open repository, and the data directory it belongs to (if any). */
export async function openLocatedRepo(flags: RepoFlags): Promise<{ repo: Repository; dir?: DataDir }> {
  const { backend, dir } = await locateRepo(flags);
  if (!dir) {
    const master = await requireMasterKey({
      keyFile: flags['key-file'],
      passphraseFile: flags['passphrase-file'],
    });
    return { repo: await Repository.open(backend, master) };
  }
  await requireStore(dir);
  const keyFile = dataDirKeyFile(flags, dir);
  if (keyFile === dir.storeKeyPath && !(await exists(keyFile))) {
    throw new StoreKeyRequiredError(
      `${keyFile} is missing: the data directory's store cannot be opened without it ` +
        '(restore it from your backup, or pass --key-file F)',
      { path: keyFile },
    );
  }
  const master = await requireMasterKey({
    keyFile,
    passphraseFile: flags['passphrase-file'],
    env: {},
  });
  return { repo: await Repository.open(backend, master), dir };
}

/** A coded, helpful error when DIR is not (yet) a server data directory with a store. */
async function requireStore(dir: DataDir): Promise<void> {
  if (await exists(dir.storeDir)) return;
  const what = (await exists(dir.root)) ? 'has no image store' : 'does not exist';
  throw new StoreNotFoundError(
    `data directory ${dir.root} ${what} (a first \`ferry server --data-dir ${dir.root}\` creates it; ` +
      'or pass --repo DIR for a repository of its own)',
    { dataDir: dir.root },
  );
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw toFerryError(err);
  }
}

export { intOption } from '../args.js';
