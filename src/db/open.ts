/**
 * Opens the database a URL names and brings its schema up to date:
 * - `postgres://…` or `postgresql://…`: PostgreSQL;
 * - `sqlite:PATH`, or a plain path: SQLite (created if missing; `:memory:` for tests).
 */
import { InvalidArgumentError } from '../errors/index.js';
import { migrate, type MigrationResult } from './migrate.js';
import { PostgresDatabase } from './postgres.js';
import { MIGRATIONS } from './schema.js';
import { SqliteDatabase } from './sqlite.js';
import type { Database } from './types.js';

export interface OpenedDatabase {
  readonly db: Database;
  readonly migration: MigrationResult;
}

export function isPostgresUrl(target: string): boolean {
  return /^postgres(ql)?:\/\//i.test(target);
}

export async function openDatabase(target: string): Promise<OpenedDatabase> {
  if (!target) throw new InvalidArgumentError('no database given');
  let db: Database;
  if (isPostgresUrl(target)) db = await PostgresDatabase.open(target);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    throw new InvalidArgumentError(
      `unsupported database URL ${JSON.stringify(target.split('://')[0] + '://…')}`,
      {
        expected: 'postgres://… or a SQLite file path',
      },
    );
  } else db = SqliteDatabase.open(target.replace(/^sqlite:/i, ''));
  try {
    return { db, migration: await migrate(db, MIGRATIONS) };
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
}
