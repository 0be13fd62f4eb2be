/**
 * `nextToken`s: opaque to clients, meaningful to us. A token is the keyset cursor of the
 * last item returned plus the list it belongs to, base64url-encoded. The list name stops a
 * token from one operation being replayed on another; a token that does not decode is
 * refused with FERRY_INVALID_ARGUMENT. Because every token names the last item of its page,
 * two successive pages never return the same token (botocore's paginator stops on a repeat).
 */
import type { Cursor } from '../db/index.js';
import { InvalidArgumentError } from '../errors/index.js';

/** Default page sizes documented by SMS: 50, and 100 for ListApps. */
export const DEFAULT_PAGE_SIZE = 50;
export const DEFAULT_APPS_PAGE_SIZE = 100;
/** Largest page returned whatever maxResults asks for (documented in api-compatibility.md). */
export const MAX_PAGE_SIZE = 1000;

export function pageSize(maxResults: number | undefined, fallback = DEFAULT_PAGE_SIZE): number {
  if (maxResults === undefined) return fallback;
  if (!Number.isInteger(maxResults) || maxResults < 1) {
    throw new InvalidArgumentError(`maxResults must be a positive integer, not ${maxResults}`);
  }
  return Math.min(maxResults, MAX_PAGE_SIZE);
}

export function encodeToken(list: string, cursor: Cursor | undefined): string | undefined {
  if (!cursor) return undefined;
  return Buffer.from(JSON.stringify([list, cursor.at, cursor.id]), 'utf8').toString('base64url');
}

export function decodeToken(list: string, token: string | undefined): Cursor | undefined {
  if (token === undefined) return undefined;
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(v) &&
      v.length === 3 &&
      v[0] === list &&
      (typeof v[1] === 'string' || typeof v[1] === 'number') &&
      typeof v[2] === 'string'
    ) {
      return { at: v[1], id: v[2] };
    }
  } catch {
    // fall through
  }
  throw new InvalidArgumentError(
    'nextToken is not valid for this request (use the token from the previous page)',
    {
      member: 'nextToken',
    },
  );
}
