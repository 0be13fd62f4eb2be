/**
 * Garbage collection of unreferenced chunks, safe while writers run and after a crash at
 * any point (docs/store.md, "GC with concurrent writers"). Two phases:
 *
 *   condemn  mark; write a consolidated index without the dead (and repacked) packs; record
 *            what was condemned (`gc/<id>`, pending); delete the old index files; record the
 *            locks that were live then (active).
 *   delete   once none of those locks is live: mark again; resurrect condemned chunks that
 *            became referenced; delete the other condemned packs; delete the record.
 *
 * One GC at a time (gc lock). A run first finishes what earlier runs left (pending records,
 * active records whose writers are gone), then condemns anew; with no live writer it
 * deletes in the same run.
 */
import { listAll } from '../backend/backend.js';
import { ChunkIndex, idKey } from '../index/chunk-index.js';
import type { IndexedPack } from '../index/format.js';
import {
  baseName,
  HEX64_RE,
  imageKey,
  indexKey,
  KEY_PREFIX,
  MAX_INDEX_FILE_ENTRIES,
  packKey,
} from '../layout.js';
import { listLocks, removeStaleLocks, RepoLock } from '../lock/lock.js';
import type { PackEntry } from '../pack/format.js';
import { writeIndexFile } from '../pack/packer.js';
import type { LoadedIndex, Repository } from '../repo/repository.js';
import { deleteStaging, listStaging, readMeta } from '../write/staging.js';
import { markReferenced } from './mark.js';
import { deleteGcRecord, newGcId, readGcRecords, writeGcRecord, type GcRecord } from './records.js';
import { repack } from './repack.js';

/** A put's temporary file lives for seconds; one an hour old belongs to a killed writer. */
const TEMP_FILE_AGE_MS = 3600 * 1000;

export interface GcOptions {
  /** Report what would be condemned; change nothing. */
  readonly dryRun?: boolean;
  /** Repack a pack when at least this fraction of its bytes is dead (default 0.2). */
  readonly repackThreshold?: number;
  /** Wait up to this long for the writers an active record waits for (default 0: defer). */
  readonly waitMs?: number;
  readonly pollMs?: number;
  /** Consolidate the index when there are more index files than this (default 32). */
  readonly maxIndexFiles?: number;
  /** Test hook, called between steps; throwing simulates a crash there. */
  readonly step?: (name: string) => Promise<void>;
}

export interface GcReport {
  images: number;
  incomplete: number;
  condemnedPacks: number;
  condemnedBytes: number;
  orphanPacks: number;
  repackedPacks: number;
  repackedChunks: number;
  deletedPacks: number;
  deletedBytes: number;
  resurrectedChunks: number;
  /** Records still waiting for live writers (deleted by a later run). */
  waiting: number;
  indexFilesBefore: number;
  indexFilesAfter: number;
  staleLocksRemoved: number;
  stagingRemoved: number;
  /** Temporary files of interrupted puts (local back end), older than an hour. */
  tempFilesRemoved: number;
}

export async function collectGarbage(repo: Repository, options: GcOptions = {}): Promise<GcReport> {
  const lock = await RepoLock.acquire(repo, 'gc');
  const step = options.step ?? (async () => {});
  const report: GcReport = {
    images: 0,
    incomplete: 0,
    condemnedPacks: 0,
    condemnedBytes: 0,
    orphanPacks: 0,
    repackedPacks: 0,
    repackedChunks: 0,
    deletedPacks: 0,
    deletedBytes: 0,
    resurrectedChunks: 0,
    waiting: 0,
    indexFilesBefore: 0,
    indexFilesAfter: 0,
    staleLocksRemoved: 0,
    stagingRemoved: 0,
    tempFilesRemoved: 0,
  };
  try {
    if (!options.dryRun) {
      for (const r of await readGcRecords(repo)) {
        const active = r.state === 'pending' ? await activate(repo, r, lock, step) : r;
        if (await drained(repo, active, options)) await complete(repo, active, report, step);
        else report.waiting++;
      }
    }
    await condemn(repo, lock, options, report, step);
    if (!options.dryRun) {
      report.staleLocksRemoved = await removeStaleLocks(repo);
      report.stagingRemoved = await removeDeadStaging(repo);
      const b = repo.backend as { cleanTemp?: (olderThanMs: number) => Promise<number> };
      if (typeof b.cleanTemp === 'function') report.tempFilesRemoved = await b.cleanTemp(TEMP_FILE_AGE_MS);
    }
    report.indexFilesAfter = (await listAll(repo.backend, KEY_PREFIX.index)).length;
    return report;
  } finally {
    await lock.release().catch(() => {});
  }
}

/** The visible index plus the condemned entries of every record (marking may need them). */
async function fullIndex(
  repo: Repository,
): Promise<{ visible: LoadedIndex; union: ChunkIndex; records: GcRecord[] }> {
  const visible = await repo.loadIndex();
  const records = await readGcRecords(repo);
  const union = new ChunkIndex();
  for (const id of [...visible.files.keys()].sort()) {
    for (const p of visible.files.get(id) ?? []) union.addPack(p.packId, p.entries);
  }
  for (const r of records) for (const p of r.condemned) union.addPack(p.packId, p.entries);
  return { visible, union, records };
}

async function condemn(
  repo: Repository,
  lock: RepoLock,
  options: GcOptions,
  report: GcReport,
  step: (name: string) => Promise<void>,
): Promise<void> {
  const { visible, union, records } = await fullIndex(repo);
  report.indexFilesBefore = visible.files.size;
  const marked = await markReferenced(repo, union);
  report.images = marked.images;
  report.incomplete = marked.incomplete;

  const sizes = new Map<string, number>();
  for (const o of await listAll(repo.backend, KEY_PREFIX.data)) {
    const id = baseName(o.key);
    if (HEX64_RE.test(id)) sizes.set(id, o.size);
  }
  // Every entry of every visible pack, merged across index files.
  const packs = new Map<string, Map<string, PackEntry>>();
  for (const list of visible.files.values()) {
    for (const p of list) {
      let m = packs.get(p.packId);
      if (!m) packs.set(p.packId, (m = new Map()));
      for (const e of p.entries) m.set(idKey(e.id), e);
    }
  }
  const inRecords = new Set(records.flatMap((r) => [...r.condemned.map((p) => p.packId), ...r.orphans]));
  const dead: IndexedPack[] = [];
  const partial: { pack: IndexedPack; size: number; live: Set<string> }[] = [];
  const threshold = options.repackThreshold ?? 0.2;
  for (const [packId, entries] of packs) {
    const size = sizes.get(packId);
    if (size === undefined) continue; // a missing pack is check's business, never GC's
    const live = new Set<string>();
    let liveBytes = 0;
    for (const [key, e] of entries) {
      // Live: referenced, and this is the copy the index uses (other copies are duplicates).
      if ((marked.data.has(key) || marked.tree.has(key)) && visible.index.getKey(key)?.packId === packId) {
        live.add(key);
        liveBytes += e.length;
      }
    }
    const pack = { packId, entries: [...entries.values()] };
    if (live.size === 0) dead.push(pack);
    else if (size - liveBytes >= threshold * size && live.size < entries.size)
      partial.push({ pack, size, live });
  }
  const orphans = [...sizes.keys()].filter((p) => !packs.has(p) && !inRecords.has(p));
  const bytesOf = (ps: readonly IndexedPack[]) => ps.reduce((s, p) => s + (sizes.get(p.packId) ?? 0), 0);
  report.condemnedPacks = dead.length + partial.length;
  report.condemnedBytes = bytesOf(dead) + bytesOf(partial.map((p) => p.pack));
  report.orphanPacks = orphans.length;
  if (options.dryRun) return;

  const consolidate = visible.files.size > (options.maxIndexFiles ?? 32);
  if (report.condemnedPacks === 0 && orphans.length === 0 && !consolidate) return;

  const r = await repack(repo, partial);
  report.repackedPacks = r.repacked.length;
  report.repackedChunks = r.chunks;
  await step('repacked');
  const condemned = [
    ...dead,
    ...partial.filter((p) => r.repacked.includes(p.pack.packId)).map((p) => p.pack),
  ];
  const gone = new Set(condemned.map((p) => p.packId));
  const survivors = [...packs]
    .filter(([id]) => !gone.has(id))
    .map(([packId, m]) => ({ packId, entries: [...m.values()] }));
  for (const files of chunkPacks(survivors)) await writeIndexFile(repo, files);
  await step('index-written');
  if (condemned.length === 0 && orphans.length === 0) {
    // Consolidation only: every entry of the old files is in the new ones.
    for (const id of visible.files.keys()) await repo.backend.delete(indexKey(id));
    return;
  }
  const record: GcRecord = {
    version: 1,
    id: newGcId(),
    state: 'pending',
    created: new Date().toISOString(),
    oldIndexes: [...visible.files.keys()],
    condemned,
    orphans,
    waitFor: [],
  };
  await writeGcRecord(repo, record);
  await step('record-written');
  const active = await activate(repo, record, lock, step);
  if (await drained(repo, active, { waitMs: 0 })) await complete(repo, active, report, step);
  else report.waiting++;
}

/** Splits packs into index files of at most MAX_INDEX_FILE_ENTRIES entries. */
function* chunkPacks(packs: readonly IndexedPack[]): Generator<IndexedPack[]> {
  let batch: IndexedPack[] = [];
  let n = 0;
  for (const p of packs) {
    if (n + p.entries.length > MAX_INDEX_FILE_ENTRIES && batch.length > 0) {
      yield batch;
      batch = [];
      n = 0;
    }
    batch.push(p);
    n += p.entries.length;
  }
  if (batch.length > 0) yield batch;
}

/** pending → active: delete the old index files, then note which locks are live. */
async function activate(
  repo: Repository,
  r: GcRecord,
  lock: RepoLock,
  step: (name: string) => Promise<void>,
): Promise<GcRecord> {
  for (const id of r.oldIndexes) {
    await repo.backend.delete(indexKey(id));
    await step('old-index-deleted');
  }
  const waitFor = (await listLocks(repo)).filter((l) => l.live && l.id !== lock.id).map((l) => l.id);
  const active: GcRecord = { ...r, state: 'active', waitFor };
  await writeGcRecord(repo, active);
  await step('activated');
  return active;
}

/** True when no lock the record waits for is live (polling up to waitMs). */
async function drained(repo: Repository, r: GcRecord, options: GcOptions): Promise<boolean> {
  const deadline = Date.now() + (options.waitMs ?? 0);
  while (true) {
    const live = new Set((await listLocks(repo)).filter((l) => l.live).map((l) => l.id));
    if (!r.waitFor.some((id) => live.has(id))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((res) => setTimeout(res, options.pollMs ?? 1000));
  }
}

async function complete(
  repo: Repository,
  r: GcRecord,
  report: GcReport,
  step: (name: string) => Promise<void>,
): Promise<void> {
  const { visible, union } = await fullIndex(repo);
  const marked = await markReferenced(repo, union);
  const visiblePacks = visible.index.packIds();
  const resurrect: IndexedPack[] = [];
  for (const p of r.condemned) {
    const needed = p.entries.filter((e) => {
      const key = idKey(e.id);
      return (marked.data.has(key) || marked.tree.has(key)) && !visible.index.hasKey(key);
    });
    if (needed.length > 0) resurrect.push({ packId: p.packId, entries: needed });
  }
  if (resurrect.length > 0) {
    await writeIndexFile(repo, resurrect);
    report.resurrectedChunks += resurrect.reduce((s, p) => s + p.entries.length, 0);
    await step('resurrected');
  }
  const keep = new Set([...resurrect.map((p) => p.packId), ...visiblePacks]);
  const doomed = [...r.condemned.map((p) => p.packId), ...r.orphans].filter((p) => !keep.has(p));
  const sizes = new Map((await listAll(repo.backend, KEY_PREFIX.data)).map((o) => [baseName(o.key), o.size]));
  for (const packId of doomed) {
    await repo.backend.delete(packKey(packId));
    report.deletedPacks++;
    report.deletedBytes += sizes.get(packId) ?? 0;
    await step('pack-deleted');
  }
  await deleteGcRecord(repo, r.id);
  await step('completed');
}

/** Staging of committed images, and checkpoints whose meta is gone (abandoned writes). */
async function removeDeadStaging(repo: Repository): Promise<number> {
  let n = 0;
  for (const id of await listStaging(repo)) {
    const committed = await repo.backend.exists(imageKey(id));
    const meta = committed ? undefined : await readMeta(repo, id).catch(() => undefined);
    if (!committed && meta) continue;
    // A live writer of this image (resuming) keeps its staging.
    const writing = (await listLocks(repo)).some((l) => l.live && l.kind === 'write' && l.image === id);
    if (writing) continue;
    await deleteStaging(repo, id);
    n++;
  }
  return n;
}
