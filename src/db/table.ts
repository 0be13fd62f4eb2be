/**
 * A table described once as data: record field → column name and how its value is stored.
 * Repositories use it to build their statements, so row ↔ record mapping is not repeated
 * per query (and a typo in a column name fails at the first test, not in production).
 */
import { InternalError } from '../errors/index.js';
import type { Row, SqlExecutor, SqlValue } from './types.js';

/** text: string; int: number; bool: INTEGER 0/1; json: any JSON value in TEXT. */
export type ColumnKind = 'text' | 'int' | 'bool' | 'json';

export type Columns<R> = { readonly [K in keyof R]-?: readonly [column: string, kind: ColumnKind] };

export class Table<R extends object> {
  readonly name: string;
  readonly key: keyof R & string;
  readonly #columns: Columns<R>;
  readonly #fields: readonly (keyof R & string)[];
  readonly selectList: string;

  constructor(name: string, key: keyof R & string, columns: Columns<R>) {
    this.name = name;
    this.key = key;
    this.#columns = columns;
    this.#fields = Object.keys(columns) as (keyof R & string)[];
    this.selectList = this.#fields.map((f) => this.column(f)).join(', ');
  }

  column(field: keyof R & string): string {
    const c = this.#columns[field];
    if (!c) throw new InternalError(`no column for ${this.name}.${field}`);
    return c[0];
  }

  fromRow(row: Row): R {
    const out: Record<string, unknown> = {};
    for (const f of this.#fields) {
      const [col, kind] = this.#columns[f];
      const v = row[col];
      if (v === null || v === undefined) out[f] = null;
      else if (kind === 'bool') out[f] = Number(v) !== 0;
      else if (kind === 'int') out[f] = Number(v);
      else if (kind === 'json') out[f] = JSON.parse(String(v)) as unknown;
      else out[f] = String(v);
    }
    return out as R;
  }

  #value(field: keyof R & string, v: unknown): SqlValue {
    if (v === null || v === undefined) return null;
    const kind = this.#columns[field][1];
    if (kind === 'json') return JSON.stringify(v);
    if (kind === 'bool') return v ? 1 : 0;
    return v as SqlValue;
  }

  async insert(x: SqlExecutor, rec: R): Promise<void> {
    const cols = this.#fields.map((f) => this.column(f));
    await x.run(
      `INSERT INTO ${this.name} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
      this.#fields.map((f) => this.#value(f, rec[f])),
    );
  }

  /** Inserts, or on a conflict on `conflict` updates every field except those in `keep`. */
  async upsert(
    x: SqlExecutor,
    rec: R,
    conflict: readonly (keyof R & string)[],
    keep: readonly (keyof R & string)[] = [],
  ): Promise<void> {
    const cols = this.#fields.map((f) => this.column(f));
    const updates = this.#fields
      .filter((f) => !conflict.includes(f) && !keep.includes(f) && f !== this.key)
      .map((f) => `${this.column(f)} = excluded.${this.column(f)}`);
    await x.run(
      `INSERT INTO ${this.name} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')}) ` +
        `ON CONFLICT (${conflict.map((f) => this.column(f)).join(', ')}) DO UPDATE SET ${updates.join(', ')}`,
      this.#fields.map((f) => this.#value(f, rec[f])),
    );
  }

  async get(x: SqlExecutor, id: string): Promise<R | undefined> {
    const row = await x.get(
      `SELECT ${this.selectList} FROM ${this.name} WHERE ${this.column(this.key)} = ?`,
      [id],
    );
    return row ? this.fromRow(row) : undefined;
  }

  /** Rows matching a WHERE fragment (column names, `?` params), in `orderBy` order. */
  async select(x: SqlExecutor, where: string, params: readonly SqlValue[] = [], tail = ''): Promise<R[]> {
    const rows = await x.all(
      `SELECT ${this.selectList} FROM ${this.name}${where ? ` WHERE ${where}` : ''}${tail ? ` ${tail}` : ''}`,
      params,
    );
    return rows.map((r) => this.fromRow(r));
  }

  /**
   * Sets the fields of `patch` on the row `id`; with `onlyIf`, only while that field has
   * one of the listed values (a compare-and-set for state machines). Returns rows changed.
   */
  async update(
    x: SqlExecutor,
    id: string,
    patch: Partial<R>,
    onlyIf?: { readonly field: keyof R & string; readonly in: readonly SqlValue[] },
  ): Promise<number> {
    const fields = (Object.keys(patch) as (keyof R & string)[]).filter((f) => f !== this.key);
    if (fields.length === 0) return 0;
    const sets = fields.map((f) => `${this.column(f)} = ?`).join(', ');
    const params: SqlValue[] = fields.map((f) => this.#value(f, patch[f]));
    params.push(id);
    let guard = '';
    if (onlyIf) {
      if (onlyIf.in.length === 0) return 0;
      guard = ` AND ${this.column(onlyIf.field)} IN (${onlyIf.in.map(() => '?').join(', ')})`;
      params.push(...onlyIf.in);
    }
    const r = await x.run(
      `UPDATE ${this.name} SET ${sets} WHERE ${this.column(this.key)} = ?${guard}`,
      params,
    );
    return r.changes;
  }
}
