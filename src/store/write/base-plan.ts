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
