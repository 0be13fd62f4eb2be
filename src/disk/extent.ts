/**
 * Tagged extents: how every reader describes a disk, whatever its format. Later stages
 * (convert, checksum, replication) skip `zero` and `unallocated` space by looking at the
 * tag only.
 *
 * - `data`: bytes stored in this layer (may still happen to be zero).
 * - `compressed`: bytes stored compressed in this layer (qcow2, VMDK streamOptimized).
 * - `zero`: this layer says the range reads as zeros (qcow2 ZERO flag, VHDX PAYLOAD_BLOCK_ZERO, …).
 * - `unallocated`: this layer holds nothing; the parent (backing file) provides the bytes,
 *   or zeros when there is no parent.
 */
export const EXTENT_KINDS = ['data', 'zero', 'unallocated', 'compressed'] as const;
export type ExtentKind = (typeof EXTENT_KINDS)[number];

/** What one layer says about a range of its own virtual disk. */
export interface LayerExtent {
  readonly offset: number;
  readonly length: number;
  readonly kind: ExtentKind;
  /** For `data`: where the first byte lives in the layer's file, when it is one file. */
  readonly fileOffset?: number;
}

/** What the whole chain says: the layer at `depth` (0 = the image named) provides the range. */
export interface Extent extends LayerExtent {
  /** 0 for the top image, 1 for its backing file, …; for `unallocated`, the chain length. */
  readonly depth: number;
  /** Name of the file that provides the bytes (empty for `unallocated`). */
  readonly source: string;
}

export function extentEnd(e: { offset: number; length: number }): number {
  return e.offset + e.length;
}

/** True when the extent carries stored bytes that must be read. */
export function isStored(kind: ExtentKind): boolean {
  return kind === 'data' || kind === 'compressed';
}

/**
 * Appends `next` to `out`, merging with the last extent when they are contiguous, of the
 * same kind and source (and, for data, contiguous in the file too).
 */
export function pushMerged<T extends LayerExtent & { depth?: number; source?: string }>(
  out: T[],
  next: T,
): void {
  if (next.length === 0) return;
  const last = out[out.length - 1];
  if (
    last &&
    last.kind === next.kind &&
    extentEnd(last) === next.offset &&
    last.depth === next.depth &&
    last.source === next.source &&
    (last.fileOffset === undefined
      ? next.fileOffset === undefined
      : next.fileOffset !== undefined && last.fileOffset + last.length === next.fileOffset)
  ) {
    out[out.length - 1] = { ...last, length: last.length + next.length };
    return;
  }
  out.push(next);
}
