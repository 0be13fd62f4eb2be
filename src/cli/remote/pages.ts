/** Every page of a paginated SMS list, bounded: a server that keeps sending tokens cannot loop us. */
import { ApiServerError } from '../../errors/index.js';

/** The API's largest page (docs/control-plane.md, Limits). */
export const PAGE_SIZE = 1000;
/** 1 000 pages of 1 000: far beyond any catalog (10 000 servers per images folder). */
const MAX_PAGES = 1000;

export async function allPages<T>(
  fetchPage: (
    nextToken: string | undefined,
  ) => Promise<{ items: T[] | undefined; nextToken?: string | undefined }>,
): Promise<T[]> {
  const out: T[] = [];
  const seen = new Set<string>();
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const { items, nextToken } = await fetchPage(token);
    out.push(...(items ?? []));
    if (!nextToken) return out;
    if (seen.has(nextToken)) throw new ApiServerError('the server repeated a page token (a paging loop)');
    seen.add(nextToken);
    token = nextToken;
  }
  throw new ApiServerError(`more than ${MAX_PAGES} pages; the listing was stopped`);
}
