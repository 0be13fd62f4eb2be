/**
 * The data directory: everything a Ferry server keeps lives under one directory.
 *
 *   DATA_DIR/
 *     ferry.db                SQLite database (unless config.json names PostgreSQL)
 *     config.json             settings fixed at first start (database URL), 0600
 *     master.key              32 random bytes encrypting secrets at rest, 0600
 *     admin-credentials.json  the first access key, written once at first start, 0600
 *     store/                  the image store (a repository, see docs/store.md)
 *     store.key               the image store's master key, 0600 (keep a copy elsewhere!)
 *     tls/                    the CA and server certificate Ferry made
 *
 * Default: $FERRY_DATA_DIR, else $XDG_DATA_HOME/ferry, else ~/.local/share/ferry.
 */
import { constants } from 'node:fs';
import { chmod, mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, OperationNotPermittedError, toFerryError } from '../errors/index.js';

export interface DataDir {
  readonly root: string;
  readonly sqlitePath: string;
  readonly configPath: string;
  readonly masterKeyPath: string;
  readonly adminCredentialsPath: string;
  readonly storeDir: string;
  readonly storeKeyPath: string;
  readonly tlsDir: string;
}

export interface DataDirConfig {
  /** PostgreSQL URL when the server was first started with --database. */
  readonly database?: string;
}

const MASTER_KEY_BYTES = 32;

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FERRY_DATA_DIR) return env.FERRY_DATA_DIR;
  const base = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'ferry');
}

export function dataDir(root: string): DataDir {
  return {
    root,
    sqlitePath: join(root, 'ferry.db'),
    configPath: join(root, 'config.json'),
    masterKeyPath: join(root, 'master.key'),
    adminCredentialsPath: join(root, 'admin-credentials.json'),
    storeDir: join(root, 'store'),
    storeKeyPath: join(root, 'store.key'),
    tlsDir: join(root, 'tls'),
  };
}

/** Creates the directory (0700) if needed. */
export async function ensureDataDir(d: DataDir): Promise<void> {
  try {
    await mkdir(d.root, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw toFerryError(err);
  }
}

export async function readConfig(d: DataDir): Promise<DataDirConfig> {
  let text: string;
  try {
    text = await readFile(d.configPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw toFerryError(err);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object');
    const database = (parsed as Record<string, unknown>).database;
    return typeof database === 'string' ? { database } : {};
  } catch (err) {
    throw new InvalidArgumentError(`${d.configPath} is not valid: ${(err as Error).message}`, {
      path: d.configPath,
    });
  }
}

export async function writeConfig(d: DataDir, config: DataDirConfig): Promise<void> {
  await writePrivateFile(d.configPath, JSON.stringify(config, null, 2) + '\n');
}

/** The database a data directory uses: its recorded PostgreSQL URL, else its SQLite file. */
export async function databaseTarget(d: DataDir, override?: string): Promise<string> {
  return override ?? (await readConfig(d)).database ?? d.sqlitePath;
}

/**
 * The master key, created on first use. Creation uses O_EXCL so two processes starting at
 * once cannot each write a different key: the loser reads the winner's.
 */
export async function loadOrCreateMasterKey(d: DataDir): Promise<Buffer> {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      const key = await readFile(d.masterKeyPath);
      if (key.length === MASTER_KEY_BYTES) return key;
      if (key.length !== 0) {
        throw new InvalidArgumentError(`${d.masterKeyPath} is not a Ferry master key (wrong size)`, {
          path: d.masterKeyPath,
          size: key.length,
        });
      }
      // Empty: another process has created it and is about to write it.
      await new Promise((r) => setTimeout(r, 20));
      continue;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw toFerryError(err);
    }
    const { randomBytes } = await import('node:crypto');
    const key = randomBytes(MASTER_KEY_BYTES);
    try {
      const fh = await open(
        d.masterKeyPath,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
        0o600,
      );
      try {
        await fh.writeFile(key);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return key;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw toFerryError(err);
    }
  }
  throw new InvalidArgumentError(`${d.masterKeyPath} stays empty; remove it if no Ferry process is starting`);
}

/** Writes a file only the owner can read (0600), replacing any previous content. */
export async function writePrivateFile(path: string, content: string): Promise<void> {
  try {
    await writeFile(path, content, { mode: 0o600 });
    await chmod(path, 0o600);
  } catch (err) {
    throw toFerryError(err);
  }
}

/** Writes a file only if it does not exist yet; false when it already existed. */
export async function createPrivateFile(path: string, content: string): Promise<boolean> {
  try {
    await writeFile(path, content, { mode: 0o600, flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw toFerryError(err);
  }
}

/**
 * One `ferry server` per data directory: DATA_DIR/server.pid holds the pid of the server
 * using it. A pid file whose process is gone (a crash, kill -9) is taken over. Returns the
 * release function.
 */
export async function lockDataDir(d: DataDir): Promise<() => Promise<void>> {
  const path = join(d.root, 'server.pid');
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await createPrivateFile(path, `${process.pid}\n`)) {
      return async () => {
        const { rm } = await import('node:fs/promises');
        await rm(path, { force: true });
      };
    }
    const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
      throw new OperationNotPermittedError(
        `another ferry server (pid ${holder}) is using ${d.root}; stop it first or use another --data-dir`,
        { pid: holder, dataDir: d.root },
      );
    }
    const { rm } = await import('node:fs/promises');
    await rm(path, { force: true });
  }
  throw new OperationNotPermittedError(`cannot lock ${d.root} (server.pid keeps changing)`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
