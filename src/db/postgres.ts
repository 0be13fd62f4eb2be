/**
 * PostgreSQL back end (pg): for scale-out and for operators who already run PostgreSQL.
 * A pool of connections; transactions run SERIALIZABLE and are retried on serialization
 * failures, which gives the same guarantees as SQLite's single writer.
 *
 * The connection URL is the usual `postgres://user:pass@host:port/db`; `?options=-c
 * search_path=NAME` selects a schema (the test matrix uses one schema per test file).
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import {
  DatabaseConflictError,
  DatabaseUnavailableError,
  InternalError,
  toFerryError,
} from '../errors/index.js';
import { normalizeParams, toPostgresPlaceholders } from './params.js';
import type { Database, Row, SqlExecutor, SqlValue } from './types.js';

/** Connections per process: the API, the scheduler and the workers share them. */
const POOL_SIZE = 10;
const CONNECT_TIMEOUT_MS = 5_000;
/** Serialization failures are retried this many times before the error surfaces. */
const MAX_TX_ATTEMPTS = 8;
const INT8_OID = 20;
const NUMERIC_OID = 1700;

/** BIGINT (epoch milliseconds, counts) as JS numbers: every value Ferry stores is < 2^53. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
};

/** SQLSTATEs that mean "try the transaction again". */
const RETRY_STATES = new Set(['40001', '40P01']);
const UNIQUE_VIOLATION = '23505';

type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

export class PostgresDatabase implements Database {
  readonly dialect = 'postgres' as const;
  readonly description: string;
  readonly #pool: pg.Pool;

  private constructor(pool: pg.Pool, description: string) {
    this.#pool = pool;
    this.description = description;
  }

  /** Connects once to fail fast (FERRY_DATABASE_UNAVAILABLE) when the server is down. */
  static async open(url: string): Promise<PostgresDatabase> {
    const pool = new pg.Pool({
      connectionString: url,
      max: POOL_SIZE,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      // Idle connections stay open: at the default (10 s) a burst after a quiet spell pays
      // PostgreSQL's fork and the re-preparation of statements, tens of milliseconds each
      // (bench/api-latency.ts: p99 78–143 ms with it, see docs/benchmarks.md).
      idleTimeoutMillis: 0,
      types,
    });
    // An idle client losing its connection must not crash the process.
    pool.on('error', () => undefined);
    const description = redact(url);
    try {
      const client = await pool.connect();
      client.release();
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new DatabaseUnavailableError(
        `PostgreSQL at ${description} is unreachable: ${(err as Error).message}`,
        { database: description },
        { cause: err },
      );
    }
    return new PostgresDatabase(pool, description);
  }

  async warm(): Promise<void> {
    const clients = await Promise.all(
      Array.from({ length: POOL_SIZE }, () => this.#pool.connect().catch(() => undefined)),
    );
    for (const c of clients) c?.release();
  }

  all<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return query<T>(this.#pool, sql, params);
  }

  async get<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await query<T>(this.#pool, sql, params))[0];
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<{ changes: number }> {
    return { changes: (await execute(this.#pool, sql, params)).rowCount ?? 0 };
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw translate(err, 'BEGIN');
    }
    const tx: SqlExecutor = {
      dialect: 'postgres',
      all: <T extends Row>(sql: string, params: readonly SqlValue[] = []) => query<T>(client, sql, params),
      get: async <T extends Row>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> => {
        const rows: T[] = await query<T>(client, sql, params);
        return rows[0];
      },
      run: async (sql, params = []) => ({ changes: (await execute(client, sql, params)).rowCount ?? 0 }),
    };
    try {
      for (let attempt = 1; ; attempt++) {
        await execute(client, 'BEGIN ISOLATION LEVEL SERIALIZABLE', []);
        try {
          const result = await fn(tx);
          await execute(client, 'COMMIT', []);
          return result;
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          const state = sqlState(err);
          if (!state || !RETRY_STATES.has(state)) throw err;
          if (attempt >= MAX_TX_ATTEMPTS) {
            throw new DatabaseUnavailableError(
              `PostgreSQL: transaction still conflicting after ${attempt} attempts`,
              { attempts: attempt },
              { cause: err },
            );
          }
          // Back off a little (with jitter) so two conflicting writers do not collide again.
          await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
        }
      }
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

async function query<T extends Row>(q: Queryable, sql: string, params: readonly SqlValue[]): Promise<T[]> {
  return (await execute(q, sql, params)).rows as T[];
}

/** Statement name per SQL text: each pooled connection parses and plans a statement once. */
const statementNames = new Map<string, { name: string; text: string }>();
function prepared(sql: string): { name: string; text: string } {
  let s = statementNames.get(sql);
  if (!s) {
    s = {
      name: `ferry_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`,
      text: toPostgresPlaceholders(sql),
    };
    if (statementNames.size < 10_000) statementNames.set(sql, s);
  }
  return s;
}

async function execute(q: Queryable, sql: string, params: readonly SqlValue[]): Promise<pg.QueryResult> {
  try {
    // Transaction control and DDL run unnamed; everything else as a named prepared statement.
    if (params.length === 0 && /^\s*(BEGIN|COMMIT|ROLLBACK|CREATE|ALTER|DROP)\b/i.test(sql)) {
      return await q.query(sql);
    }
    return await q.query({ ...prepared(sql), values: normalizeParams(params) });
  } catch (err) {
    throw translate(err, sql);
  }
}

function sqlState(err: unknown): string | undefined {
  const cause = (err as { cause?: unknown }).cause ?? err;
  const code = (cause as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

function translate(err: unknown, sql: string): Error {
  const state = sqlState(err);
  const message = (err as Error).message;
  if (state === UNIQUE_VIOLATION) {
    return new DatabaseConflictError(message, { statement: firstWords(sql) }, { cause: err });
  }
  // Keep serialization failures recognisable for the retry loop (sqlState reads `cause`).
  if (state && RETRY_STATES.has(state)) return Object.assign(new Error(message), { cause: err });
  if (
    state?.startsWith('08') ||
    state === '57P01' ||
    /ECONNREFUSED|ECONNRESET|terminat|timeout/i.test(message)
  ) {
    return new DatabaseUnavailableError(`PostgreSQL: ${message}`, {}, { cause: err });
  }
  if (state)
    return new InternalError(
      `PostgreSQL: ${message}`,
      { statement: firstWords(sql), sqlState: state },
      { cause: err },
    );
  return toFerryError(err);
}

function firstWords(sql: string): string {
  return sql.trim().split(/\s+/).slice(0, 4).join(' ');
}

/** The URL without its password. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}
