/** What every `ferry keys` command shares: locating the data directory and its database. */
import { defaultDataDir, openControlPlane, type OpenedControlPlane } from '../../control/index.js';
import type { Options } from '../args.js';

export const DATA_DIR_OPTIONS = {
  'data-dir': { type: 'string' },
  database: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies Options;

export async function withControl<T>(
  values: { 'data-dir'?: string; database?: string },
  fn: (o: OpenedControlPlane) => Promise<T>,
): Promise<T> {
  const opened = await openControlPlane({
    dataDir: values['data-dir'] ?? defaultDataDir(),
    ...(values.database !== undefined ? { database: values.database } : {}),
  });
  try {
    return await fn(opened);
  } finally {
    await opened.close();
  }
}

export function iso(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
