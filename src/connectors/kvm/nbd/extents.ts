/**
 * Block status as extents, and how Ferry reads each metadata context:
 *
 * - `base:allocation` (NBD spec "Metadata contexts"): NBD_STATE_HOLE (bit 0) and
 *   NBD_STATE_ZERO (bit 1).
 *     HOLE + ZERO → `unallocated`: nothing stored and it reads as zeros (an NBD export
 *                   is a whole disk, there is no parent to ask);
 *     ZERO only   → `zero`: allocated (or preallocated) but reads as zeros;
 *     otherwise   → `data`: must be read (a HOLE without ZERO does not promise zeros).
 * - `qemu:dirty-bitmap:NAME` (QEMU docs/interop/nbd.txt): bit 0 set = dirty (written
 *   since the bitmap started recording) → `data`, to read; clear → `unchanged`, which an
 *   incremental copy skips because the previous copy already holds those bytes.
 * - `qemu:allocation-depth` (QEMU ≥ 5.2): the value is the depth of the backing-chain
 *   layer holding the range, 0 when no layer does.
 *
 * Flag words other than these bits are kept in `NbdExtent.flags` untouched.
 */
import { pushMerged, type ExtentKind, type LayerExtent } from '../../../disk/index.js';
import { InvalidArgumentError, NbdProtocolError } from '../../../errors/index.js';
import type { NbdClient } from './client.js';
import { MAX_BLOCK_STATUS_LENGTH, NBD_STATE_DIRTY, NBD_STATE_HOLE, NBD_STATE_ZERO } from './protocol.js';
import type { NbdExtent } from './wire.js';

/**
 * Every extent of `context` over [offset, offset+length): block-status requests of at
 * most MAX_BLOCK_STATUS_LENGTH (aligned to the server's minimum block size), repeated
 * from wherever the server stopped, adjacent extents with equal flags merged. The result
 * covers the range exactly, in order.
 */
export async function queryExtents(
  client: NbdClient,
  context: string,
  offset: number,
  length: number,
  signal?: AbortSignal,
): Promise<NbdExtent[]> {
  if (!client.info.contexts.has(context)) {
    throw new InvalidArgumentError(`metadata context ${context} was not selected when connecting`, {
      context,
    });
  }
  const end = offset + length;
  const align = client.info.minBlockSize;
  const step = MAX_BLOCK_STATUS_LENGTH - (MAX_BLOCK_STATUS_LENGTH % align);
  const out: NbdExtent[] = [];
  for (let pos = offset; pos < end;) {
    signal?.throwIfAborted();
    const n = Math.min(step, end - pos);
    const list = (await client.blockStatus(pos, n)).get(context);
    if (!list || list.length === 0) {
      throw new NbdProtocolError(`NBD server sent no block status for ${context}`, { context, offset: pos });
    }
    for (const e of list) pushMergedFlags(out, e);
    pos = (list[list.length - 1] as NbdExtent).offset + (list[list.length - 1] as NbdExtent).length;
  }
  return out;
}

/** Appends `e`, merging it into the last extent when contiguous with the same flags. */
export function pushMergedFlags(out: NbdExtent[], e: NbdExtent): void {
  const last = out[out.length - 1];
  if (last && last.flags === e.flags && last.offset + last.length === e.offset) {
    out[out.length - 1] = { offset: last.offset, length: last.length + e.length, flags: last.flags };
  } else out.push(e);
}

/** base:allocation flags → the disk engine's tag (see the table above). */
export function allocationKind(flags: number): 'data' | 'zero' | 'unallocated' {
  if (flags & NBD_STATE_ZERO) return flags & NBD_STATE_HOLE ? 'unallocated' : 'zero';
  return 'data';
}

/** base:allocation extents → the disk engine's tagged extents (merged by kind). */
export function toAllocationExtents(list: readonly NbdExtent[]): LayerExtent[] {
  const out: LayerExtent[] = [];
  for (const e of list)
    pushMerged(out, { offset: e.offset, length: e.length, kind: allocationKind(e.flags) });
  return out;
}

export function isDirty(flags: number): boolean {
  return (flags & NBD_STATE_DIRTY) !== 0;
}

/** An extent of an incremental copy: `unchanged` ranges are skipped, the others as ExtentKind. */
export type ChangeKind = ExtentKind | 'unchanged';
export interface ChangeExtent {
  readonly offset: number;
  readonly length: number;
  readonly kind: ChangeKind;
}

function pushChange(out: ChangeExtent[], e: ChangeExtent): void {
  if (e.length === 0) return;
  const last = out[out.length - 1];
  if (last && last.kind === e.kind && last.offset + last.length === e.offset) {
    out[out.length - 1] = { ...last, length: last.length + e.length };
  } else out.push(e);
}

/** Dirty-bitmap extents → `data` (dirty, read it) / `unchanged` (clean). */
export function toDirtyExtents(list: readonly NbdExtent[]): ChangeExtent[] {
  const out: ChangeExtent[] = [];
  for (const e of list)
    pushChange(out, { offset: e.offset, length: e.length, kind: isDirty(e.flags) ? 'data' : 'unchanged' });
  return out;
}

/**
 * What an incremental copy must do per range: clean → `unchanged`; dirty → what
 * base:allocation says there (`data` to read, `zero`/`unallocated` to write as zeros
 * without reading). Both lists must cover the same range (as queryExtents returns them).
 */
export function combineDirtyAndAllocation(
  dirty: readonly NbdExtent[],
  allocation: readonly NbdExtent[],
): ChangeExtent[] {
  const span = (l: readonly NbdExtent[]) =>
    l.length === 0
      ? [0, 0]
      : [
          (l[0] as NbdExtent).offset,
          (l[l.length - 1] as NbdExtent).offset + (l[l.length - 1] as NbdExtent).length,
        ];
  const [ds, de] = span(dirty);
  const [as, ae] = span(allocation);
  if (ds !== as || de !== ae) {
    throw new InvalidArgumentError('dirty and allocation extents cover different ranges', { ds, de, as, ae });
  }
  const out: ChangeExtent[] = [];
  let j = 0;
  for (const d of dirty) {
    const dEnd = d.offset + d.length;
    if (!isDirty(d.flags)) {
      pushChange(out, { offset: d.offset, length: d.length, kind: 'unchanged' });
      continue;
    }
    for (let pos = d.offset; pos < dEnd;) {
      while (
        j < allocation.length &&
        (allocation[j] as NbdExtent).offset + (allocation[j] as NbdExtent).length <= pos
      )
        j++;
      const a = allocation[j] as NbdExtent;
      const stop = Math.min(dEnd, a.offset + a.length);
      pushChange(out, { offset: pos, length: stop - pos, kind: allocationKind(a.flags) });
      pos = stop;
    }
  }
  return out;
}

/** qemu:allocation-depth value: 0 = no layer of the chain holds the range, 1 = the top layer, … */
export function allocationDepth(flags: number): number {
  return flags >>> 0;
}
