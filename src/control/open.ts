/**
 * Opens the control plane of a data directory: creates the directory and master key on
 * first use, opens (and migrates) its database — the SQLite file inside it, or the
 * PostgreSQL URL recorded at first start — and wires the services.
 */
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { isPostgresUrl, openDatabase, type MigrationResult } from '../db/index.js';
import { InvalidArgumentError } from '../errors/index.js';
import {
  createKeyFile,
  LocalBackend,
  parseMasterKey,
  Repository,
  storeLayout,
  type MasterKey,
} from '../store/index.js';
import { ControlPlane, type ControlPlaneOptions } from './control-plane.js';
import {
  dataDir,
  ensureDataDir,
  loadOrCreateMasterKey,
  lockDataDir,
  readConfig,
  writeConfig,
  type DataDir,
} from './data-dir.js';

export interface OpenControlOptions extends Omit<ControlPlaneOptions, 'db' | 'masterKey'> {
  readonly dataDir: string;
  /** PostgreSQL URL; recorded in config.json so later commands use the same database. */
  readonly database?: string;
  /** Open (creating on first use) the image store in DATA_DIR/store with DATA_DIR/store.key. */
  readonly withStore?: boolean;
  /** Take the data directory's server lock (one `ferry server` per data directory). */
  readonly exclusive?: boolean;
}

export interface OpenedControlPlane {
  readonly control: ControlPlane;
  readonly dir: DataDir;
  readonly migration: MigrationResult;
  /** Where the data lives, without credentials. */
  readonly databaseDescription: string;
  close(): Promise<void>;
}

export async function openControlPlane(o: OpenControlOptions): Promise<OpenedControlPlane> {
  const dir = dataDir(o.dataDir);
  await ensureDataDir(dir);
  const unlock = o.exclusive ? await lockDataDir(dir) : async () => undefined;
  try {
    return await openLocked(o, dir, unlock);
  } catch (err) {
    await unlock();
    throw err;
  }
}

async function openLocked(
  o: OpenControlOptions,
  dir: DataDir,
  unlock: () => Promise<void>,
): Promise<OpenedControlPlane> {
  const config = await readConfig(dir);
  if (o.database !== undefined && !isPostgresUrl(o.database)) {
    throw new InvalidArgumentError(
      '--database takes a postgres:// URL (SQLite lives in the data directory)',
      {
        database: o.database.split('://')[0],
      },
    );
  }
  if (o.database !== undefined && config.database !== undefined && config.database !== o.database) {
    throw new InvalidArgumentError(
      `${dir.root} already uses another database (see ${dir.configPath}); omit --database or use another --data-dir`,
    );
  }
  if (o.database !== undefined && config.database === undefined)
    await writeConfig(dir, { database: o.database });
  const masterKey = await loadOrCreateMasterKey(dir);
  const { db, migration } = await openDatabase(o.database ?? config.database ?? dir.sqlitePath);
  const { dataDir: _root, database: _db, withStore, exclusive: _x, ...rest } = o;
  let store: Repository | undefined;
  try {
    if (withStore) store = await openStore(dir);
  } catch (err) {
    await db.close();
    throw err;
  }
  const control = new ControlPlane({
    ...rest,
    db,
    masterKey,
    ...(store ? { store, instancesDir: join(dir.root, 'instances') } : {}),
    objectsDir: join(dir.root, 'objects'),
  });
  return {
    control,
    dir,
    migration,
    databaseDescription: db.description,
    close: async () => {
      await db.close();
      await unlock();
    },
  };
}

/** The data directory's image store; created with a new key file on first use. */
export async function openStore(dir: DataDir): Promise<Repository> {
  const backend = new LocalBackend(dir.storeDir);
  let master: MasterKey;
  let created = false;
  try {
    master = parseMasterKey(await readFile(dir.storeKeyPath), dir.storeKeyPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    master = await createKeyFile(dir.storeKeyPath);
    created = true;
  }
  if (created || !(await backend.exists(storeLayout.CONFIG_KEY)))
    return Repository.init(backend, master, { label: 'ferry server' });
  return Repository.open(backend, master);
}
