/**
 * Incremental images: which blocks of a disk must be read, which are zeros, and which
 * are unchanged since a base image and can reuse its block references without a read.
 *
 * The disk is a chain whose layer at `baseDepth` is the base image (a live source's
 * changed-blocks view stacks itself over the previous image: ranges it did not change
 * fall through to that layer). Per block of the store:
 *   read  — any byte comes from a layer above the base (changed data), or the block mixes
 *           base bytes with zeros from above (only a read gives its content);
 *   zero  — every byte reads as zeros without coming from the base;
 *   base  — every byte comes from the base: the base's reference and digest are reused.
 * Runs of equal classes are merged; memory does not grow with the disk (the map streams).
 */
import { isStored, type Disk } from '../../disk/index.js';
import { InternalError } from '../../errors/index.js';

export type BlockClass = 'read' | 'zero' | 'base';

export interface BlockRun {
  readonly kind: BlockClass;
  readonly first: number;
  readonly count: number;
}

function combine(a: BlockClass | undefined, b: BlockClass): BlockClass {
  if (a === undefined || a === b) return b;
  return 'read'; // read wins; base mixed with zero needs a read too
}

export async function* planBlocks(
  disk: Disk,
  blockSize: number,
  baseDepth: number,
  signal?: AbortSignal,
): AsyncGenerator<BlockRun> {
  const blocks = Math.ceil(disk.virtualSize / blockSize);
  let pending: { kind: BlockClass; first: number; count: number } | undefined;
  /** The block partly covered so far, and the class of what covered it. */
  let partial: { block: number; kind: BlockClass } | undefined;
  function* emit(kind: BlockClass, first: number, count: number): Generator<BlockRun> {
    if (count <= 0) return;
    if (pending && pending.kind === kind && pending.first + pending.count === first) {
      pending.count += count;
      return;
    }
    if (pending) yield pending;
    pending = { kind, first, count };
  }
  for await (const e of disk.map()) {
    signal?.throwIfAborted();
    const kind: BlockClass = e.depth === baseDepth ? 'base' : isStored(e.kind) ? 'read' : 'zero';
    const end = e.offset + e.length;
    let first = Math.floor(e.offset / blockSize);
    const last = Math.ceil(end / blockSize); // exclusive
    if (partial && partial.block === first) {
      partial.kind = combine(partial.kind, kind);
      if (end >= (first + 1) * blockSize || end === disk.virtualSize) {
        yield* emit(partial.kind, first, 1);
        partial = undefined;
      }
      first++;
    }
    if (first >= last) continue;
    const endsInside = end % blockSize !== 0 && end !== disk.virtualSize;
    const whole = endsInside ? last - 1 - first : last - first;
    yield* emit(kind, first, whole);
    if (endsInside) partial = { block: last - 1, kind };
  }
  if (partial) yield* emit(partial.kind, partial.block, 1);
  if (pending) yield pending;
  if (pending && pending.first + pending.count !== blocks) {
    // The map covers the disk exactly (chain.ts); anything else is a bug, not bad input.
    throw new InternalError(`block plan covers ${pending.first + pending.count} of ${blocks} blocks`);
  }
}

/** Where an incremental write's runs go (the disk run's batch pipeline, in order). */
export interface IncrementalFeed {
  bytes(data: Buffer): Promise<void>;
  zeros(blocks: number, bytes: number): Promise<void>;
  base(first: number, count: number): Promise<void>;
}

/** Reads in flight ahead of the batches, and the largest single read (≤ one batch slot). */
const READ_AHEAD = 16;
const READ_PIECE_BYTES = 1024 * 1024;

/**
 * Feeds a disk to the pipeline by its block plan. Changed ranges are usually small and
 * scattered (a dirty bitmap's 64 KiB granules), so their reads are started ahead, in
 * order, instead of each waiting for the previous one's round trip to the source.
 */
export async function feedIncremental(
  disk: Disk,
  blockSize: number,
  baseDepth: number,
  feed: IncrementalFeed,
  signal?: AbortSignal,
): Promise<void> {
  const queue: { run: BlockRun; bytes: number; data?: Promise<Buffer> }[] = [];
  const next = async () => {
    const q = queue.shift() as (typeof queue)[number];
    if (q.data) await feed.bytes(await q.data);
    else if (q.run.kind === 'zero') await feed.zeros(q.run.count, q.bytes);
    else await feed.base(q.run.first, q.run.count);
  };
  try {
    for await (const run of planBlocks(disk, blockSize, baseDepth, signal)) {
      const from = run.first * blockSize;
      const end = Math.min(disk.virtualSize, (run.first + run.count) * blockSize);
      if (run.kind !== 'read') queue.push({ run, bytes: end - from });
      const piece = Math.max(blockSize, READ_PIECE_BYTES - (READ_PIECE_BYTES % blockSize));
      for (let at = from; run.kind === 'read' && at < end; at += piece) {
        const n = Math.min(piece, end - at);
        const data = disk.read(at, n);
        data.catch(() => {}); // surfaced when its turn comes
        queue.push({ run, bytes: n, data });
      }
      while (queue.length > READ_AHEAD) await next();
    }
    while (queue.length > 0) await next();
  } finally {
    queue.length = 0;
  }
}

/** Where a full write's runs go: zeros, or ranges to read (the disk run reads them into its slots). */
export interface FullFeed {
  zeros(blocks: number, bytes: number): Promise<void>;
  read(offset: number, length: number): Promise<void>;
}

/** Feeds a whole disk by the same plan with no base: every run is read or zeros. */
export async function feedFull(
  disk: Disk,
  blockSize: number,
  feed: FullFeed,
  signal?: AbortSignal,
): Promise<void> {
  for await (const run of planBlocks(disk, blockSize, -1, signal)) {
    const from = run.first * blockSize;
    const end = Math.min(disk.virtualSize, (run.first + run.count) * blockSize);
    if (run.kind === 'zero') await feed.zeros(run.count, end - from);
    else await feed.read(from, end - from);
  }
}
