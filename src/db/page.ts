/**
 * Keyset pagination: pages ordered by (sort field, primary key), continued strictly after
 * the last row of the previous page. Unlike OFFSET it neither skips nor repeats rows when
 * rows are added or removed between pages, and a page costs the same wherever it is.
 */
import type { Table } from './table.js';
import type { SqlExecutor, SqlValue } from './types.js';

/** Where the next page starts: the sort value and key of the last row returned. */
export interface Cursor {
  readonly at: string | number;
  readonly id: string;
}

export interface Page<R> {
  readonly items: readonly R[];
  /** Present only when more rows exist after `items`. */
  readonly next?: Cursor;
}

export interface PageQuery {
  readonly after?: Cursor | undefined;
  readonly limit: number;
}

export async function keysetPage<R extends object>(
  x: SqlExecutor,
  table: Table<R>,
  sortField: keyof R & string,
  where: string,
  params: readonly SqlValue[],
  q: PageQuery,
): Promise<Page<R>> {
  const s = table.column(sortField);
  const k = table.column(table.key);
  const clauses = where ? [`(${where})`] : [];
  const all: SqlValue[] = [...params];
  if (q.after) {
    clauses.push(`(${s} > ? OR (${s} = ? AND ${k} > ?))`);
    all.push(q.after.at, q.after.at, q.after.id);
  }
  all.push(q.limit + 1);
  const rows = await table.select(x, clauses.join(' AND '), all, `ORDER BY ${s}, ${k} LIMIT ?`);
  if (rows.length <= q.limit) return { items: rows };
  const items = rows.slice(0, q.limit);
  const last = items[items.length - 1] as R;
  return {
    items,
    next: { at: last[sortField] as unknown as string | number, id: last[table.key] as unknown as string },
  };
}
