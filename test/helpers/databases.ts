/**
 * The database test matrix: every suite that touches the database runs once per back end
 * (kysely's `for (const dialect of DIALECTS)`). PostgreSQL tests get a private schema in the
 * `test` database, dropped afterwards. When PostgreSQL is unreachable they FAIL with a
 * message saying how to start it: they never skip silently.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { DIALECTS, openDatabase, type Database, type Dialect } from '../../src/db/index.js';
import { tempDir } from './qemu.js';

export { DIALECTS };

/** Override with FERRY_TEST_POSTGRES_URL (must be a database the tests may create schemas in). */
export const POSTGRES_URL = process.env.FERRY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  readonly db: Database;
  /** The URL/path a separate process (a `ferry server` under test) can open. */
  readonly target: string;
  close(): Promise<void>;
}

/** A fresh, migrated, empty database of the given dialect. */
export async function openTestDatabase(dialect: Dialect): Promise<TestDatabase> {
  if (dialect === 'sqlite') {
    const target = join(await tempDir('ferry-db-'), 'ferry.db');
    const { db } = await openDatabase(target);
    return { db, target, close: () => db.close() };
  }
  const schema = `ferry_t_${randomBytes(6).toString('hex')}`;
  await admin(`CREATE SCHEMA ${schema}`);
  const target = withSearchPath(POSTGRES_URL, schema);
  const { db } = await openDatabase(target);
  return {
    db,
    target,
    close: async () => {
      await db.close();
      await admin(`DROP SCHEMA ${schema} CASCADE`);
    },
  };
}

/** A target URL for a fresh PostgreSQL schema (for servers started by a test). */
export async function freshPostgresTarget(): Promise<{ target: string; drop(): Promise<void> }> {
  const schema = `ferry_t_${randomBytes(6).toString('hex')}`;
  await admin(`CREATE SCHEMA ${schema}`);
  return { target: withSearchPath(POSTGRES_URL, schema), drop: () => admin(`DROP SCHEMA ${schema} CASCADE`) };
}

function withSearchPath(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL for the test matrix is unreachable at ${POSTGRES_URL} (${(err as Error).message}). ` +
        'Start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set ' +
        'FERRY_TEST_POSTGRES_URL; these tests never skip.',
    );
  }
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
