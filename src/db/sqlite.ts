/**
 * SQLite back end (better-sqlite3): the embedded default. One connection per process in
 * WAL mode, so `ferry keys create` can write while `ferry server` runs (readers never block
 * writers; concurrent writers wait up to BUSY_TIMEOUT_MS).
 *
 * better-sqlite3 is synchronous, and a transaction spans awaits of the caller's code, so a
 * FIFO lock serialises transactions against every other statement on the connection:
 * without it a statement of another request would silently join the open transaction.
 */
import BetterSqlite3 from 'better-sqlite3';
import {
  DatabaseConflictError,
  DatabaseUnavailableError,
  InternalError,
  toFerryError,
} from '../errors/index.js';
import { Mutex } from './mutex.js';
import { normalizeParams } from './params.js';
import type { Database, Row, SqlExecutor, SqlValue } from './types.js';

/** How long a writer waits for another process's write lock before failing. */
const BUSY_TIMEOUT_MS = 10_000;
/** Prepared statements kept per connection (the repositories use a few dozen). */
const STATEMENT_CACHE_SIZE = 256;

type Statement = BetterSqlite3.Statement<unknown[], Row>;

export class SqliteDatabase implements Database {
  readonly dialect = 'sqlite' as const;
  readonly description: string;
  readonly #db: BetterSqlite3.Database;
  readonly #lock = new Mutex();
  readonly #statements = new Map<string, Statement>();
  readonly #direct: SqlExecutor;

  private constructor(db: BetterSqlite3.Database, path: string) {
    this.#db = db;
    this.description = `sqlite:${path}`;
    this.#direct = {
      dialect: 'sqlite',
      all: async <T extends Row>(sql: string, params?: readonly SqlValue[]) => this.#all(sql, params) as T[],
      get: async <T extends Row>(sql: string, params?: readonly SqlValue[]) =>
        this.#all(sql, params)[0] as T | undefined,
      run: async (sql, params) => this.#run(sql, params),
    };
  }

  /** Opens (creating if needed) the database file; `:memory:` is a private in-memory one. */
  static open(path: string): SqliteDatabase {
    let db: BetterSqlite3.Database;
    try {
      db = new BetterSqlite3(path, { timeout: BUSY_TIMEOUT_MS });
      if (path !== ':memory:') db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
    } catch (err) {
      throw new DatabaseUnavailableError(`cannot open SQLite database ${path}: ${(err as Error).message}`, {
        path,
      });
    }
    return new SqliteDatabase(db, path);
  }

  all<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.#lock.run(() => this.#all(sql, params) as T[]);
  }

  async get<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<{ changes: number }> {
    return this.#lock.run(() => this.#run(sql, params));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#lock.run(async () => {
      // IMMEDIATE takes the write lock now, so the transaction cannot fail half-way with
      // SQLITE_BUSY when it first writes: serializable, like the PostgreSQL back end.
      this.#exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this.#direct);
        this.#exec('COMMIT');
        return result;
      } catch (err) {
        if (this.#db.inTransaction) this.#exec('ROLLBACK');
        throw err;
      }
    });
  }

  /** One embedded connection, open already. */
  async warm(): Promise<void> {}

  async close(): Promise<void> {
    await this.#lock.run(() => {
      this.#statements.clear();
      if (this.#db.open) this.#db.close();
    });
  }

  #prepare(sql: string): Statement {
    let st = this.#statements.get(sql);
    if (!st) {
      st = this.#db.prepare<unknown[], Row>(sql);
      if (this.#statements.size >= STATEMENT_CACHE_SIZE) {
        const oldest = this.#statements.keys().next().value;
        if (oldest !== undefined) this.#statements.delete(oldest);
      }
      this.#statements.set(sql, st);
    }
    return st;
  }

  #all(sql: string, params: readonly SqlValue[] = []): Row[] {
    try {
      const st = this.#prepare(sql);
      const values = normalizeParams(params);
      if (st.reader) return st.all(...values);
      st.run(...values);
      return [];
    } catch (err) {
      throw translate(err, sql);
    }
  }

  #run(sql: string, params: readonly SqlValue[] = []): { changes: number } {
    try {
      const st = this.#prepare(sql);
      const values = normalizeParams(params);
      if (st.reader) {
        st.all(...values);
        return { changes: 0 };
      }
      return { changes: st.run(...values).changes };
    } catch (err) {
      throw translate(err, sql);
    }
  }

  #exec(sql: string): void {
    try {
      this.#db.exec(sql);
    } catch (err) {
      throw translate(err, sql);
    }
  }
}

function translate(err: unknown, sql: string): Error {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code.startsWith('SQLITE_CONSTRAINT_UNIQUE') || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      return new DatabaseConflictError(
        (err as Error).message,
        { statement: firstWords(sql) },
        { cause: err },
      );
    }
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code === 'SQLITE_CANTOPEN') {
      return new DatabaseUnavailableError(`SQLite: ${(err as Error).message}`, {}, { cause: err });
    }
  }
  if (typeof code === 'string' && code.startsWith('SQLITE_')) {
    return new InternalError(
      `SQLite: ${(err as Error).message}`,
      { statement: firstWords(sql) },
      { cause: err },
    );
  }
  return toFerryError(err);
}

function firstWords(sql: string): string {
  return sql.trim().split(/\s+/).slice(0, 4).join(' ');
}
