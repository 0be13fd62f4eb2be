/**
 * `ferry store check`: proves that every listed image can be read back, like `restic
 * check`. Metadata by default (config, key slots, index files, pack headers, records and
 * their trees); `readData` also reads every pack whole (packs.ts). Problems are collected,
 * each with the code it would raise, rather than stopping at the first.
 */
import { FerryError, StoreMissingChunkError } from '../../errors/index.js';
import { listAll } from '../backend/backend.js';
import { decodeSlot } from '../crypto/slots.js';
import { ChunkIndex, idKey } from '../index/chunk-index.js';
import { decodeIndex } from '../index/format.js';
import { baseName, HEX64_RE, ID_BYTES, KEY_PREFIX, packKey } from '../layout.js';
import { listLocks, RepoLock } from '../lock/lock.js';
import { decodeRecord, isImageId } from '../manifest/record.js';
import { treeShape, type TreeShape } from '../manifest/tree.js';
import type { PackEntry } from '../pack/format.js';
import { ChunkFetcher } from '../read/fetch.js';
import { walkTree } from '../read/tree-reader.js';
import type { Repository } from '../repo/repository.js';
import { readGcRecords } from '../gc/records.js';
import { listStaging, readMeta, readProgress } from '../write/staging.js';
import { compareEntries, readPackHeader, verifyPackData } from './packs.js';

export interface CheckIssue {
  readonly code: string;
  readonly object: string;
  readonly message: string;
}

export interface CheckReport {
  readonly errors: CheckIssue[];
  readonly warnings: CheckIssue[];
  readonly stats: {
    images: number;
    disks: number;
    indexFiles: number;
    packs: number;
    chunks: number;
    treeNodes: number;
    readPacks: number;
    readBytes: number;
  };
}

export interface CheckOptions {
  readonly readData?: boolean;
  readonly onProgress?: (what: string) => void;
}

export async function checkRepository(repo: Repository, options: CheckOptions = {}): Promise<CheckReport> {
  const lock = await RepoLock.acquire(repo, 'read');
  const errors: CheckIssue[] = [];
  const warnings: CheckIssue[] = [];
  const stats = {
    images: 0,
    disks: 0,
    indexFiles: 0,
    packs: 0,
    chunks: 0,
    treeNodes: 0,
    readPacks: 0,
    readBytes: 0,
  };
  const issue = (list: CheckIssue[], object: string, err: unknown) => {
    const fe = FerryError.is(err) ? err : null;
    list.push({ code: fe?.code ?? 'FERRY_INTERNAL', object, message: (err as Error).message });
  };
  const guard = async (list: CheckIssue[], object: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      issue(list, object, err);
    }
  };
  try {
    // Key slots (the config was authenticated when the repository was opened).
    for (const o of await listAll(repo.backend, KEY_PREFIX.keys)) {
      await guard(errors, o.key, async () => {
        decodeSlot(await repo.backend.get(o.key), baseName(o.key));
      });
    }
    // Index files, each on its own, so one bad file does not hide the others.
    const index = new ChunkIndex();
    const indexed = new Map<string, Map<string, PackEntry>>();
    for (const o of await listAll(repo.backend, KEY_PREFIX.index)) {
      await guard(errors, o.key, async () => {
        for (const p of decodeIndex(await repo.getObject('index', o.key), o.key)) {
          index.addPack(p.packId, p.entries);
          let m = indexed.get(p.packId);
          if (!m) indexed.set(p.packId, (m = new Map()));
          for (const e of p.entries) m.set(idKey(e.id), e);
        }
        stats.indexFiles++;
      });
    }
    stats.chunks = index.size;
    const condemned = new Set<string>();
    await guard(errors, KEY_PREFIX.gc, async () => {
      for (const r of await readGcRecords(repo)) {
        for (const p of r.condemned) condemned.add(p.packId);
        for (const p of r.orphans) condemned.add(p);
      }
    });
    // Packs: every indexed pack exists, its header matches the index.
    const sizes = new Map<string, number>();
    for (const o of await listAll(repo.backend, KEY_PREFIX.data)) {
      const id = baseName(o.key);
      if (!HEX64_RE.test(id) || o.key !== packKey(id)) {
        warnings.push({ code: 'FERRY_STORE_CORRUPT', object: o.key, message: `unexpected object ${o.key}` });
      } else sizes.set(id, o.size);
    }
    stats.packs = sizes.size;
    for (const [packId, entries] of indexed) {
      const key = packKey(packId);
      const size = sizes.get(packId);
      if (size === undefined) {
        issue(
          errors,
          key,
          new StoreMissingChunkError(`pack ${packId} is named by the index but does not exist`),
        );
        continue;
      }
      options.onProgress?.(key);
      await guard(errors, key, async () => {
        const header = await readPackHeader(repo, packId, size);
        for (const p of compareEntries([...entries.values()], header)) {
          errors.push({ code: 'FERRY_STORE_CORRUPT', object: key, message: p });
        }
      });
    }
    for (const packId of sizes.keys()) {
      if (!indexed.has(packId) && !condemned.has(packId)) {
        warnings.push({
          code: 'FERRY_STORE_MISSING_CHUNK',
          object: packKey(packId),
          message: 'pack is in no index (left by an interrupted write; GC reclaims it)',
        });
      }
    }
    // Images: every record decodes, every tree node reads, every reference is indexed.
    const fetcher = new ChunkFetcher(repo, index);
    const seen = new Set<string>();
    const refChecked = new Set<string>();
    const walk = async (
      list: CheckIssue[],
      object: string,
      shape: TreeShape,
      level: number,
      i: number,
      root: Buffer,
    ) =>
      guard(list, object, () =>
        walkTree(fetcher, shape, level, i, root, seen, (lvl, _ref, node) => {
          stats.treeNodes++;
          if (lvl !== 1) return;
          for (let at = 0; at < node.length; at += ID_BYTES) {
            const ref = node.subarray(at, at + ID_BYTES);
            const key = idKey(ref);
            if (ref.every((b) => b === 0) || refChecked.has(key)) continue;
            refChecked.add(key);
            const loc = index.getKey(key);
            if (!loc || loc.entry.type !== 0) {
              list.push({
                code: 'FERRY_STORE_MISSING_CHUNK',
                object,
                message: `references chunk ${ref.toString('hex')} which no index has`,
              });
            }
          }
        }),
      );
    for (const o of await listAll(repo.backend, KEY_PREFIX.images)) {
      const id = baseName(o.key);
      await guard(errors, o.key, async () => {
        if (!isImageId(id)) throw new StoreMissingChunkError(`unexpected object ${o.key}`);
        const image = decodeRecord(await repo.getJson('image', o.key), id, repo.config);
        stats.images++;
        for (const d of image.disks) {
          stats.disks++;
          options.onProgress?.(`${id}/${d.index}`);
          const shape = treeShape(d.virtualSize, d.blockSize, d.fanout);
          await walk(errors, `${o.key} disk ${d.index}`, shape, shape.depth, 0, Buffer.from(d.root, 'hex'));
          if (d.digests) {
            const digests = Buffer.from(d.digests, 'hex');
            await guard(errors, `${o.key} disk ${d.index} digests`, () =>
              walkTree(fetcher, shape, shape.depth, 0, digests, seen, () => void stats.treeNodes++),
            );
          }
        }
      });
    }
    // Interrupted writes: problems there endanger no listed image (warnings).
    for (const id of await listStaging(repo)) {
      await guard(warnings, `staging/${id}`, async () => {
        const meta = await readMeta(repo, id);
        const progress = await readProgress(repo, id, meta.disks.length);
        for (const [k, p] of progress.entries()) {
          const shape = treeShape(meta.disks[k]?.virtualSize ?? 0, repo.config.blockSize, repo.config.fanout);
          for (const [i, ref] of p.pages.entries())
            await walk(warnings, `staging/${id} disk ${k}`, shape, 1, i, ref);
        }
      });
    }
    for (const l of await listLocks(repo)) {
      if (!l.live && l.host === '?') {
        warnings.push({ code: 'FERRY_STORE_CORRUPT', object: `locks/${l.id}`, message: 'undecodable lock' });
      }
    }
    if (options.readData) {
      for (const [packId, size] of sizes) {
        options.onProgress?.(`read ${packKey(packId)}`);
        await guard(errors, packKey(packId), async () => {
          const r = await verifyPackData(repo, packId, size);
          stats.readPacks++;
          stats.readBytes += r.bytes;
          for (const p of r.problems) issue(errors, packKey(packId), p);
        });
      }
    }
    return { errors, warnings, stats };
  } finally {
    await lock.release().catch(() => {});
  }
}
