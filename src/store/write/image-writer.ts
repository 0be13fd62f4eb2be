/**
 * Writes a server image: one or more disks from any disk-engine source, into one
 * `images/<ami-id>` record that is put last (the commit). See docs/store.md, "Writing an
 * image", for the order of operations and why a crash at any point is safe.
 */
import type { Disk, ProgressObserver } from '../../disk/index.js';
import { InvalidArgumentError, StoreImageNotFoundError } from '../../errors/index.js';
import { BatchBuffers, createCodec } from '../chunk/pool.js';
import type { ChunkIndex } from '../index/chunk-index.js';
import { RepoLock } from '../lock/lock.js';
import { imageKey, MAX_DISKS_PER_IMAGE, MAX_IMAGE_VIRTUAL_SIZE } from '../layout.js';
import { decodeRecord, isImageId, newImageId, type DiskImage, type ServerImage } from '../manifest/record.js';
import { treeShape } from '../manifest/tree.js';
import { PackSink } from '../pack/packer.js';
import type { Repository } from '../repo/repository.js';
import type { WriteContext } from './context.js';
import { ChunkFetcher } from '../read/fetch.js';
import { TreeReader } from '../read/tree-reader.js';
import { DiskRun, type BaseReaders } from './disk-run.js';
import { ProgressCounter } from './progress.js';
import {
  checkResume,
  deleteStaging,
  EMPTY_STATS,
  readMeta,
  readProgress,
  writeMeta,
  type DiskProgress,
  type StagingMeta,
} from './staging.js';

export interface WriteImageOptions {
  readonly name: string;
  readonly description?: string;
  readonly job?: string | null;
  readonly sourceServer?: string | null;
  readonly run?: string | null;
  readonly disks: readonly {
    readonly name: string;
    readonly disk: Disk;
    /**
     * The layer at `depth` of `disk` is disk `disk` of image `image`: blocks that come
     * wholly from it reuse its references and digests instead of being read (incremental
     * images). Ignored when that image has no digest tree or another size.
     */
    readonly base?: { readonly image: string; readonly disk: number; readonly depth: number };
  }[];
  /**
   * An index the caller loaded while holding a lock (of any kind) that it keeps until this
   * write returns, e.g. the read lock of the base image's view (ImageView.index): GC then
   * waits for that lock, so the index is as safe to deduplicate against as one loaded under
   * the write lock. Saves loading every index file a second time.
   */
  readonly index?: ChunkIndex;
  /** Continue the interrupted write of this image id. */
  readonly resume?: string;
  /** Worker threads (0 = inline); default: every core, at most 8. */
  readonly threads?: number;
  /** Target pack size (default 16 MiB). */
  readonly packBytes?: number;
  /** Least time between checkpoints of a disk (default 10 s). */
  readonly checkpointMs?: number;
  readonly progress?: ProgressObserver;
  readonly signal?: AbortSignal;
  /** Test hook: called after each disk finished (to simulate a crash between disks). */
  readonly afterDisk?: (index: number) => Promise<void>;
}

const READ_BYTES = 4 * 1024 * 1024;

export async function writeImage(repo: Repository, options: WriteImageOptions): Promise<ServerImage> {
  checkOptions(options);
  const id = options.resume ?? newImageId();
  const lock = await RepoLock.acquire(repo, 'write', { image: id });
  const threads = options.threads ?? undefined;
  const codec = createCodec(repo.keys, threads);
  try {
    // The lock exists before the index is loaded: GC's safety argument depends on it.
    const index = options.index ?? (await repo.loadIndex()).index;
    let meta: StagingMeta;
    let progress: DiskProgress[];
    if (options.resume) {
      const committed = await readCommitted(repo, id);
      if (committed) {
        await deleteStaging(repo, id);
        return committed;
      }
      meta = await readMeta(repo, id).catch((err: unknown) => {
        if ((err as { code?: string }).code === 'FERRY_STORE_MISSING_CHUNK') {
          throw new StoreImageNotFoundError(`no interrupted write of ${id} to resume`, { image: id });
        }
        throw err;
      });
      checkResume(
        meta,
        options.disks.map((d) => ({ name: d.name, virtualSize: d.disk.virtualSize })),
      );
      progress = await readProgress(repo, id, meta.disks.length);
    } else {
      meta = {
        version: 1,
        id,
        name: options.name,
        description: options.description ?? '',
        created: new Date().toISOString(),
        job: options.job ?? null,
        sourceServer: options.sourceServer ?? null,
        run: options.run ?? null,
        disks: options.disks.map((d) => ({ name: d.name, virtualSize: d.disk.virtualSize })),
      };
      await writeMeta(repo, meta);
      progress = options.disks.map(() => ({ pages: [], digests: [], stats: EMPTY_STATS, nextSeq: 0 }));
    }

    const chunkBytes = Math.max(1, Math.floor(READ_BYTES / repo.config.blockSize)) * repo.config.blockSize;
    const maxInflight = Math.max(3, codec.threads * 2 + 1);
    let current: DiskRun | undefined;
    const sink = new PackSink(repo, index, {
      ...(options.packBytes ? { packBytes: options.packBytes } : {}),
      onIndexed: () => current?.maybeCheckpoint(),
    });
    const counter = new ProgressCounter(
      options.disks.reduce((s, d) => s + d.disk.virtualSize, 0),
      options.progress,
    );
    const ctx: WriteContext = {
      repo,
      imageId: id,
      sink,
      codec,
      buffers: new BatchBuffers(maxInflight + 1, chunkBytes, repo.config.blockSize),
      reserved: new Set(),
      lock,
      maxInflight,
      checkpointMs: options.checkpointMs ?? 10_000,
      signal: options.signal,
      progress: (v, r) => counter.advance(v, r),
    };
    const disks: DiskImage[] = [];
    const fetcher = new ChunkFetcher(repo, index);
    for (const [i, { name, disk, base }] of options.disks.entries()) {
      const p = progress[i] as DiskProgress;
      let result;
      if (p.done) {
        counter.advance(disk.virtualSize, 0);
        result = { ...p.done, stats: p.stats };
      } else {
        const readers = base ? await baseReaders(repo, fetcher, base, disk.virtualSize) : undefined;
        current = new DiskRun(ctx, disk, i, p, readers);
        result = await current.run();
        current = undefined;
      }
      disks.push({
        index: i,
        name,
        virtualSize: disk.virtualSize,
        blockSize: repo.config.blockSize,
        fanout: repo.config.fanout,
        depth: 0,
        ...result,
      });
      await options.afterDisk?.(i);
    }
    await sink.flush();
    lock.assertFresh();
    const record = {
      version: 1,
      id,
      name: meta.name,
      description: meta.description,
      created: meta.created,
      job: meta.job,
      sourceServer: meta.sourceServer,
      run: meta.run,
      disks: disks.map((d, i) => ({ ...d, name: meta.disks[i]?.name ?? d.name, depth: depthOf(repo, d) })),
    };
    const image = decodeRecord(
      JSON.parse(JSON.stringify(record)) as Record<string, unknown>,
      id,
      repo.config,
    );
    await repo.putJson('image', imageKey(id), record); // the commit point
    await deleteStaging(repo, id);
    return image;
  } finally {
    await codec.close();
    await lock.release().catch(() => {});
  }
}

/** Tree readers of a base image's disk, when it can serve as one (same size, digests kept). */
async function baseReaders(
  repo: Repository,
  fetcher: ChunkFetcher,
  base: { image: string; disk: number; depth: number },
  virtualSize: number,
): Promise<BaseReaders | undefined> {
  const image = await readCommitted(repo, base.image);
  const d = image?.disks[base.disk];
  if (!d?.digests || d.virtualSize !== virtualSize) return undefined;
  const shape = treeShape(d.virtualSize, repo.config.blockSize, repo.config.fanout);
  return {
    depth: base.depth,
    tree: new TreeReader(shape, Buffer.from(d.root, 'hex'), fetcher),
    digests: new TreeReader(shape, Buffer.from(d.digests, 'hex'), fetcher),
  };
}

function depthOf(repo: Repository, d: DiskImage): number {
  return treeShape(d.virtualSize, repo.config.blockSize, repo.config.fanout).depth;
}

async function readCommitted(repo: Repository, id: string): Promise<ServerImage | undefined> {
  if (!(await repo.backend.exists(imageKey(id)))) return undefined;
  return decodeRecord(await repo.getJson('image', imageKey(id)), id, repo.config);
}

function checkOptions(o: WriteImageOptions): void {
  if (o.disks.length === 0 || o.disks.length > MAX_DISKS_PER_IMAGE) {
    throw new InvalidArgumentError(`an image has 1 to ${MAX_DISKS_PER_IMAGE} disks, got ${o.disks.length}`);
  }
  if (o.resume !== undefined && !isImageId(o.resume)) {
    throw new InvalidArgumentError(`${JSON.stringify(o.resume)} is not an image id (ami- and 17 hex digits)`);
  }
  if (!o.name || o.name.length > 1024)
    throw new InvalidArgumentError('an image needs a name (≤ 1024 characters)');
  for (const d of o.disks) {
    if (d.disk.virtualSize > MAX_IMAGE_VIRTUAL_SIZE) {
      throw new InvalidArgumentError(`disk ${d.name} is larger than ${MAX_IMAGE_VIRTUAL_SIZE} bytes`);
    }
  }
}
