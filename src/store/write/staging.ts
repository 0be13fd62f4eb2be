/**
 * Staging: the durable state of an image being written (`staging/<ami-id>/…`), so a write
 * killed at any point resumes from its last checkpoint and a half-written image is never
 * listed (only `images/` is).
 *
 *   meta                  the write's parameters (name, job, disks and their sizes)
 *   d<disk>-<seq>         a checkpoint: the next committed level-1 pages of one disk (refs
 *                         and page digests), cumulative stats, and on the last one `done`
 *                         (root and checksum)
 */
import { StoreCorruptError, StoreResumeMismatchError } from '../../errors/index.js';
import { listAll } from '../backend/backend.js';
import { HEX64_RE, ID_BYTES, stagingPrefix } from '../layout.js';
import type { DiskStats } from '../manifest/record.js';
import type { Repository } from '../repo/repository.js';

export interface StagingMeta {
  readonly version: 1;
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly created: string;
  readonly job: string | null;
  readonly sourceServer: string | null;
  readonly run: string | null;
  readonly disks: readonly { readonly name: string; readonly virtualSize: number }[];
}

export interface Checkpoint {
  readonly disk: number;
  readonly seq: number;
  readonly firstPage: number;
  /** n × 32 bytes each. */
  readonly pages: Buffer;
  readonly digests: Buffer;
  readonly stats: DiskStats;
  readonly done?: { readonly root: string; readonly checksum: string; readonly digests?: string };
}

/** What the checkpoints of one disk add up to. */
export interface DiskProgress {
  readonly pages: Buffer[];
  readonly digests: Buffer[];
  readonly stats: DiskStats;
  readonly nextSeq: number;
  readonly done?: { readonly root: string; readonly checksum: string; readonly digests?: string };
}

export const EMPTY_STATS: DiskStats = {
  dataBlocks: 0,
  zeroBlocks: 0,
  newChunks: 0,
  newBytes: 0,
  storedBytes: 0,
};

const metaKey = (id: string) => `${stagingPrefix(id)}meta`;
const cpKey = (id: string, disk: number, seq: number) =>
  `${stagingPrefix(id)}d${String(disk).padStart(3, '0')}-${String(seq).padStart(8, '0')}`;
const CP_RE = /^d(\d{3})-(\d{8})$/;

export async function writeMeta(repo: Repository, meta: StagingMeta): Promise<void> {
  await repo.putJson('staging', metaKey(meta.id), meta);
}

export async function writeCheckpoint(repo: Repository, imageId: string, cp: Checkpoint): Promise<void> {
  await repo.putJson('staging', cpKey(imageId, cp.disk, cp.seq), {
    ...cp,
    pages: cp.pages.toString('base64'),
    digests: cp.digests.toString('base64'),
  });
}

export async function readMeta(repo: Repository, id: string): Promise<StagingMeta> {
  const v = await repo.getJson('staging', metaKey(id));
  if (v.version !== 1 || v.id !== id || !Array.isArray(v.disks) || typeof v.name !== 'string') {
    throw new StoreCorruptError(`staging of ${id}: invalid parameters`, { object: metaKey(id) });
  }
  return v as unknown as StagingMeta;
}

/** Reads and checks every checkpoint of an interrupted write: per disk, pages in order. */
export async function readProgress(repo: Repository, id: string, disks: number): Promise<DiskProgress[]> {
  const byDisk: { seq: number; key: string }[][] = Array.from({ length: disks }, () => []);
  for (const o of await listAll(repo.backend, stagingPrefix(id))) {
    const m = CP_RE.exec(o.key.slice(stagingPrefix(id).length));
    if (!m) continue;
    const disk = Number(m[1]);
    const list = byDisk[disk];
    if (!list)
      throw new StoreCorruptError(`staging of ${id}: checkpoint for unknown disk ${disk}`, { object: o.key });
    list.push({ seq: Number(m[2]), key: o.key });
  }
  const out: DiskProgress[] = [];
  for (const [disk, list] of byDisk.entries()) {
    list.sort((a, b) => a.seq - b.seq);
    const pages: Buffer[] = [];
    const digests: Buffer[] = [];
    let stats = EMPTY_STATS;
    let done: DiskProgress['done'];
    let nextSeq = 0;
    for (const { seq, key } of list) {
      const cp = decodeCheckpoint(await repo.getJson('staging', key), key);
      if (cp.disk !== disk || cp.seq !== seq || seq !== nextSeq || cp.firstPage !== pages.length || done) {
        throw new StoreCorruptError(`staging of ${id}: checkpoint ${key} is out of sequence`, {
          object: key,
        });
      }
      for (let at = 0; at < cp.pages.length; at += ID_BYTES) {
        pages.push(cp.pages.subarray(at, at + ID_BYTES));
        digests.push(cp.digests.subarray(at, at + ID_BYTES));
      }
      stats = cp.stats;
      done = cp.done;
      nextSeq = seq + 1;
    }
    out.push({ pages, digests, stats, nextSeq, ...(done ? { done } : {}) });
  }
  return out;
}

function decodeCheckpoint(v: Record<string, unknown>, key: string): Checkpoint {
  const bad = (): never => {
    throw new StoreCorruptError(`${key}: invalid checkpoint`, { object: key });
  };
  const pages = typeof v.pages === 'string' ? Buffer.from(v.pages, 'base64') : bad();
  const digests = typeof v.digests === 'string' ? Buffer.from(v.digests, 'base64') : bad();
  if (pages.length % ID_BYTES !== 0 || digests.length !== pages.length) bad();
  const s = v.stats as Record<string, unknown> | undefined;
  const nums = ['dataBlocks', 'zeroBlocks', 'newChunks', 'newBytes', 'storedBytes'] as const;
  if (!s || !nums.every((n) => Number.isSafeInteger(s[n]))) bad();
  const d = v.done as Record<string, unknown> | undefined;
  if (d && (typeof d.root !== 'string' || !HEX64_RE.test(d.root) || typeof d.checksum !== 'string')) bad();
  if (d && d.digests !== undefined && (typeof d.digests !== 'string' || !HEX64_RE.test(d.digests))) bad();
  if (![v.disk, v.seq, v.firstPage].every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) bad();
  return {
    disk: v.disk as number,
    seq: v.seq as number,
    firstPage: v.firstPage as number,
    pages,
    digests,
    stats: s as unknown as DiskStats,
    ...(d
      ? {
          done: {
            root: d.root as string,
            checksum: d.checksum as string,
            ...(d.digests ? { digests: d.digests as string } : {}),
          },
        }
      : {}),
  };
}

/** Checks that the disks given for a resume are the ones the write started with. */
export function checkResume(
  meta: StagingMeta,
  disks: readonly { name: string; virtualSize: number }[],
): void {
  const same =
    meta.disks.length === disks.length && meta.disks.every((d, i) => d.virtualSize === disks[i]?.virtualSize);
  if (!same) {
    throw new StoreResumeMismatchError(
      `${meta.id} was started with ${meta.disks.length} disk(s) of sizes ` +
        `${meta.disks.map((d) => d.virtualSize).join(', ')}; got ${disks.map((d) => d.virtualSize).join(', ')}`,
      { image: meta.id },
    );
  }
}

export async function deleteStaging(repo: Repository, id: string): Promise<void> {
  // Meta first: checkpoints without meta are an abandoned write (GC ignores and removes them).
  await repo.backend.delete(metaKey(id));
  for (const o of await listAll(repo.backend, stagingPrefix(id))) await repo.backend.delete(o.key);
}

/** Image ids with staging objects. */
export async function listStaging(repo: Repository): Promise<string[]> {
  const ids = new Set<string>();
  for (const o of await listAll(repo.backend, 'staging/')) ids.add(o.key.split('/')[1] as string);
  return [...ids].sort();
}
