/**
 * Pure mapping of a sparse extent: grain tables → runs tagged like LayerExtent. The reader
 * loads the tables (I/O); this file only interprets entries, with QEMU's rules
 * (get_cluster_offset): 0 = unallocated, 1 = zeroed grain when the extent has the
 * zeroed-grain flag, anything else = the sector where the grain starts. Every grain an
 * entry points to is checked to lie inside the extent's file.
 */
import { ImageTruncatedError } from '../../../errors/index.js';
import type { ExtentKind } from '../../extent.js';
import { GRAIN_MARKER_BYTES, GTE_UNALLOCATED, GTE_ZEROED, SECTOR } from './layout.js';

export interface SparseMapParams {
  readonly source: string;
  readonly capacityBytes: number;
  readonly grainBytes: number;
  readonly gtesPerGt: number;
  readonly compressed: boolean;
  readonly markers: boolean;
  readonly zeroGrain: boolean;
  readonly fileSize: number;
}

/** A run of one kind inside an extent (offsets relative to the extent). */
export interface GrainRun {
  readonly offset: number;
  readonly length: number;
  readonly kind: ExtentKind;
  /** data: file offset of the run's first byte. */
  readonly fileOffset?: number;
  /** compressed: the grain's index in the extent and the file offset of its marker/data. */
  readonly grain?: number;
  readonly grainOffset?: number;
}

/**
 * `table(gt)` returns grain table `gt` (already loaded), or undefined when the grain
 * directory has no table there (all its grains unallocated).
 */
export type TableLookup = (gt: number) => Uint32Array | undefined;

export function grainRuns(
  p: SparseMapParams,
  offset: number,
  length: number,
  table: TableLookup,
): GrainRun[] {
  const out: GrainRun[] = [];
  const end = offset + length;
  let pos = offset;
  while (pos < end) {
    const grain = Math.floor(pos / p.grainBytes);
    const grainStart = grain * p.grainBytes;
    const grainEnd = Math.min(grainStart + p.grainBytes, p.capacityBytes);
    const runEnd = Math.min(grainEnd, end);
    const gt = table(Math.floor(grain / p.gtesPerGt));
    const gte = gt ? (gt[grain % p.gtesPerGt] as number) : GTE_UNALLOCATED;
    const len = runEnd - pos;
    if (gte === GTE_UNALLOCATED) {
      push(out, { offset: pos, length: len, kind: 'unallocated' });
    } else if (gte === GTE_ZEROED && p.zeroGrain) {
      push(out, { offset: pos, length: len, kind: 'zero' });
    } else {
      const at = gte * SECTOR;
      if (p.compressed) {
        // The marker (or, without markers, the first byte of zlib data) must be in the file;
        // the payload length is checked when the grain is read.
        const head = p.markers ? GRAIN_MARKER_BYTES : 1;
        if (at + head > p.fileSize) pastEnd(p, grain, at);
        out.push({ offset: pos, length: len, kind: 'compressed', grain, grainOffset: at });
      } else {
        // Only the part of the grain inside the disk must exist (a last, partial grain).
        if (at + (grainEnd - grainStart) > p.fileSize) pastEnd(p, grain, at);
        push(out, { offset: pos, length: len, kind: 'data', fileOffset: at + (pos - grainStart) });
      }
    }
    pos = runEnd;
  }
  return out;
}

function pastEnd(p: SparseMapParams, grain: number, at: number): never {
  throw new ImageTruncatedError(
    `${p.source}: grain ${grain} at byte ${at} lies beyond the end of the file (${p.fileSize} bytes)`,
    { format: 'vmdk', field: 'grain table entry', grain, offset: at, size: p.fileSize },
  );
}

/** Appends, merging with the previous run when contiguous (and contiguous in the file). */
function push(out: GrainRun[], run: GrainRun): void {
  const last = out[out.length - 1];
  if (
    last &&
    last.kind === run.kind &&
    last.kind !== 'compressed' &&
    last.offset + last.length === run.offset &&
    (run.fileOffset === undefined || last.fileOffset! + last.length === run.fileOffset)
  ) {
    out[out.length - 1] = { ...last, length: last.length + run.length };
    return;
  }
  out.push(run);
}

/** Indexes of the grain tables [first, last] that cover [offset, offset+length). */
export function tablesCovering(p: SparseMapParams, offset: number, length: number): [number, number] {
  const span = p.grainBytes * p.gtesPerGt;
  return [Math.floor(offset / span), Math.floor((offset + Math.max(length, 1) - 1) / span)];
}
