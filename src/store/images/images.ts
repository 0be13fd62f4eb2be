/**
 * Listing, showing and deleting server images, and retention ("keep the N most recent
 * images of a job", SMS numberOfRecentAmisToKeep). Deleting removes the record in one
 * atomic delete; the chunks only it used are reclaimed by GC.
 */
import { InvalidArgumentError, StoreCorruptError, StoreImageNotFoundError } from '../../errors/index.js';
import { listAll } from '../backend/backend.js';
import { baseName, imageKey, KEY_PREFIX } from '../layout.js';
import { decodeRecord, isImageId, type ServerImage } from '../manifest/record.js';
import { forEachLimit, type Repository } from '../repo/repository.js';
import { deleteStaging, listStaging, readMeta, type StagingMeta } from '../write/staging.js';

export async function getImage(repo: Repository, id: string): Promise<ServerImage> {
  if (!isImageId(id))
    throw new InvalidArgumentError(`${JSON.stringify(id)} is not an image id (ami- and 17 hex digits)`);
  try {
    return decodeRecord(await repo.getJson('image', imageKey(id)), id, repo.config);
  } catch (err) {
    if ((err as { code?: string }).code === 'FERRY_STORE_MISSING_CHUNK') {
      throw new StoreImageNotFoundError(`${repo.location}: no image ${id}`, { image: id });
    }
    throw err;
  }
}

/** Committed images, newest first (optionally of one job). */
export async function listImages(repo: Repository, options: { job?: string } = {}): Promise<ServerImage[]> {
  const keys = (await listAll(repo.backend, KEY_PREFIX.images)).map((o) => o.key);
  const images: ServerImage[] = [];
  await forEachLimit(keys, 8, async (key) => {
    const id = baseName(key);
    if (!isImageId(id)) throw new StoreCorruptError(`unexpected object ${key}`, { object: key });
    try {
      images.push(decodeRecord(await repo.getJson('image', key), id, repo.config));
    } catch (err) {
      // Deleted between list and get: not an error.
      if ((err as { code?: string }).code !== 'FERRY_STORE_MISSING_CHUNK') throw err;
    }
  });
  return images
    .filter((i) => options.job === undefined || i.job === options.job)
    .sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : a.id < b.id ? 1 : -1));
}

/** Deletes a committed image, or abandons an interrupted write of that id. */
export async function deleteImage(
  repo: Repository,
  id: string,
): Promise<{ committed: boolean; staging: boolean }> {
  if (!isImageId(id)) throw new InvalidArgumentError(`${JSON.stringify(id)} is not an image id`);
  const committed = await repo.backend.exists(imageKey(id));
  const staging = (await listStaging(repo)).includes(id);
  if (!committed && !staging)
    throw new StoreImageNotFoundError(`${repo.location}: no image ${id}`, { image: id });
  if (committed) await repo.backend.delete(imageKey(id));
  if (staging) await deleteStaging(repo, id);
  return { committed, staging };
}

/** Deletes all but the `keep` most recent images of `job`; returns the deleted ids. */
export async function applyRetention(
  repo: Repository,
  job: string,
  keep: number,
  /** Images that stay whatever their age (pinned by an app, booted by an instance). */
  protect: ReadonlySet<string> = new Set(),
): Promise<string[]> {
  if (!Number.isSafeInteger(keep) || keep < 0)
    throw new InvalidArgumentError(`--keep must be ≥ 0, got ${keep}`);
  const doomed = (await listImages(repo, { job })).slice(keep).filter((i) => !protect.has(i.id));
  for (const img of doomed) await repo.backend.delete(imageKey(img.id));
  return doomed.map((i) => i.id);
}

export interface IncompleteWrite {
  readonly id: string;
  readonly meta?: StagingMeta;
  /** True when the record exists too (the write committed; staging is leftover). */
  readonly committed: boolean;
}

/** Interrupted writes (never listed as images; resumable or deletable). */
export async function listIncomplete(repo: Repository): Promise<IncompleteWrite[]> {
  const out: IncompleteWrite[] = [];
  for (const id of await listStaging(repo)) {
    const committed = await repo.backend.exists(imageKey(id));
    const meta = await readMeta(repo, id).catch(() => undefined);
    out.push({ id, committed, ...(meta ? { meta } : {}) });
  }
  return out;
}
