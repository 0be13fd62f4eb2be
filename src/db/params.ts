/** Parameter handling shared by both back ends. */
import type { SqlValue } from './types.js';

/** better-sqlite3 and pg agree on strings, numbers and NULL; normalise the rest to those. */
export function normalizeParams(params: readonly SqlValue[]): (string | number | null)[] {
  return params.map((p) => (p === undefined ? null : typeof p === 'boolean' ? (p ? 1 : 0) : p));
}

/**
 * Rewrites `?` placeholders to PostgreSQL's `$n`. Ferry's SQL never puts `?` inside string
 * literals or identifiers (there is a test for the repositories' statements), so a plain
 * scan that skips quoted text is enough.
 */
export function toPostgresPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | undefined;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = undefined;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      out += `$${++n}`;
    } else {
      out += ch;
    }
  }
  return out;
}
