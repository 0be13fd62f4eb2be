/**
 * The one narrow interface between Ferry and its database. Two back ends implement it:
 * SQLite (embedded, the default; better-sqlite3) and PostgreSQL (pg). Everything above —
 * migrations, repositories — is written once in the SQL both accept:
 *
 * - placeholders are `?` (the PostgreSQL back end rewrites them to `$1, $2, …`);
 * - column types are TEXT, INTEGER and BIGINT only; booleans are INTEGER 0/1, times are
 *   BIGINT epoch milliseconds, nested values are JSON in TEXT;
 * - upserts use `INSERT … ON CONFLICT (…) DO UPDATE SET … = excluded.…`.
 *
 * A transaction function may run more than once (PostgreSQL retries it on a serialization
 * failure), so it must do nothing but database work through the executor it is given.
 */

export const DIALECTS = ['sqlite', 'postgres'] as const;
export type Dialect = (typeof DIALECTS)[number];

/** What a parameter may be; booleans become 0/1 and undefined becomes NULL. */
export type SqlValue = string | number | boolean | null | undefined;

/** A row as the driver returns it: column name → value (BIGINT already a JS number). */
export type Row = Record<string, unknown>;

export interface SqlExecutor {
  readonly dialect: Dialect;
  /** Every row of a query. */
  all<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** The first row, or undefined. */
  get<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  /** A statement without rows; `changes` is the number of rows written. */
  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }>;
}

export interface Database extends SqlExecutor {
  /**
   * Runs `fn` in one serializable transaction: committed when it resolves, rolled back when
   * it throws. Transactions do not nest; `fn` uses only the executor it is given.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Where the data lives, without credentials (for logs and `ferry server` output). */
  readonly description: string;
  /**
   * Opens the connections a busy server will need now rather than on its first burst of
   * requests (a PostgreSQL connection costs a fork and statement preparation). No-op for
   * embedded databases.
   */
  warm(): Promise<void>;
  close(): Promise<void>;
}
