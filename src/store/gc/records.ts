/**
 * GC records (`gc/<id>`): the durable memory of a two-phase collection (docs/store.md,
 * "GC with concurrent writers").
 *
 *   pending  new index files written, old ones being deleted; condemned entries may still
 *            be visible — the next GC finishes the deletion before anything else
 *   active   condemned entries are invisible to new readers; `waitFor` lists the locks that
 *            were live when that became true. Once none is live, condemned packs are deleted
 *            unless a record or checkpoint references one of their chunks (resurrection).
 */
import { randomBytes } from 'node:crypto';
import { StoreCorruptError } from '../../errors/index.js';
import { listAll } from '../backend/backend.js';
import { decodeIndex, encodeIndex, type IndexedPack } from '../index/format.js';
import { baseName, HEX64_RE, KEY_PREFIX } from '../layout.js';
import type { Repository } from '../repo/repository.js';

export interface GcRecord {
  readonly version: 1;
  readonly id: string;
  readonly state: 'pending' | 'active';
  readonly created: string;
  /** Index files to delete (they still name condemned entries). */
  readonly oldIndexes: readonly string[];
  /** Condemned packs with every entry they held (so chunks can be resurrected). */
  readonly condemned: readonly IndexedPack[];
  /** Packs no index file named when condemned (crashed writers' leftovers). */
  readonly orphans: readonly string[];
  readonly waitFor: readonly string[];
}

const ID_RE = /^[0-9a-f]{24}$/;

export function newGcId(): string {
  return `${Date.now().toString(16).padStart(12, '0')}${randomBytes(6).toString('hex')}`;
}

export async function writeGcRecord(repo: Repository, r: GcRecord): Promise<void> {
  await repo.putJson('gc', `${KEY_PREFIX.gc}${r.id}`, {
    ...r,
    condemned: encodeIndex(r.condemned).toString('base64'),
  });
}

export async function readGcRecords(repo: Repository): Promise<GcRecord[]> {
  const out: GcRecord[] = [];
  for (const o of await listAll(repo.backend, KEY_PREFIX.gc)) {
    const id = baseName(o.key);
    const v = await repo.getJson('gc', o.key);
    const bad = (): never => {
      throw new StoreCorruptError(`${o.key}: invalid GC record`, { object: o.key });
    };
    if (v.version !== 1 || v.id !== id || !ID_RE.test(id)) bad();
    if (v.state !== 'pending' && v.state !== 'active') bad();
    const strings = (x: unknown, re: RegExp) =>
      Array.isArray(x) && x.every((s) => typeof s === 'string' && re.test(s)) ? (x as string[]) : bad();
    out.push({
      version: 1,
      id,
      state: v.state as GcRecord['state'],
      created: String(v.created),
      oldIndexes: strings(v.oldIndexes, HEX64_RE),
      condemned: decodeIndex(
        Buffer.from(typeof v.condemned === 'string' ? v.condemned : bad(), 'base64'),
        o.key,
      ),
      orphans: strings(v.orphans, HEX64_RE),
      waitFor: strings(v.waitFor, /^[0-9a-f]{24}$/),
    });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : 1));
}

export async function deleteGcRecord(repo: Repository, id: string): Promise<void> {
  await repo.backend.delete(`${KEY_PREFIX.gc}${id}`);
}
