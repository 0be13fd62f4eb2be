/**
 * Schema migrations: an ordered list of numbered steps (schema.ts), applied in order, each
 * in its own transaction, and recorded in `ferry_schema`. Applying is idempotent and safe
 * with several processes starting at once (PostgreSQL: an advisory lock; SQLite: the
 * write lock that BEGIN IMMEDIATE takes). A database already migrated past what this
 * build knows is refused rather than used.
 */
import { DatabaseSchemaTooNewError, InternalError } from '../errors/index.js';
import type { Database, Dialect } from './types.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** DDL/DML statements, one per string (some drivers refuse several per call). */
  statements(dialect: Dialect): readonly string[];
}

/** Arbitrary constant naming Ferry's migration lock among PostgreSQL advisory locks. */
const PG_MIGRATION_LOCK = 7_362_514_001;

export interface MigrationResult {
  readonly from: number;
  readonly to: number;
  readonly applied: readonly string[];
}

export async function migrate(db: Database, migrations: readonly Migration[]): Promise<MigrationResult> {
  checkOrdered(migrations);
  const latest = migrations.at(-1)?.version ?? 0;
  await db.run(
    'CREATE TABLE IF NOT EXISTS ferry_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
  );
  const from = await currentVersion(db);
  if (from > latest) {
    throw new DatabaseSchemaTooNewError(
      `the database schema is version ${from}, newer than this Ferry knows (${latest}); upgrade Ferry`,
      { version: from, known: latest, database: db.description },
    );
  }
  const applied: string[] = [];
  for (const m of migrations) {
    if (m.version <= from) continue;
    const done = await db.transaction(async (tx) => {
      if (tx.dialect === 'postgres') {
        // Transactions are SERIALIZABLE, whose snapshot is taken by the first statement —
        // the lock wait — so a migration another process committed meanwhile would stay
        // invisible and be applied twice. READ COMMITTED sees it after the lock.
        await tx.run('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
        await tx.get('SELECT pg_advisory_xact_lock(?)', [PG_MIGRATION_LOCK]);
      }
      // Another process may have applied it while we waited for the lock.
      const row = await tx.get('SELECT version FROM ferry_schema WHERE version = ?', [m.version]);
      if (row) return false;
      for (const sql of m.statements(tx.dialect)) await tx.run(sql);
      await tx.run('INSERT INTO ferry_schema (version, name, applied_at) VALUES (?, ?, ?)', [
        m.version,
        m.name,
        Date.now(),
      ]);
      return true;
    });
    if (done) applied.push(`${m.version} ${m.name}`);
  }
  return { from, to: Math.max(from, latest), applied };
}

export async function currentVersion(db: Database): Promise<number> {
  const row = await db.get<{ v: number | null }>('SELECT MAX(version) AS v FROM ferry_schema');
  return Number(row?.v ?? 0);
}

function checkOrdered(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new InternalError(`migration ${m.name} has version ${m.version}, expected ${i + 1}`);
  });
}
