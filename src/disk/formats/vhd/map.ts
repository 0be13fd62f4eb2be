/**
 * Pure mapping: block states (from the BAT and sector bitmaps) → tagged extents.
 *
 * - BAT entry unallocated                → `unallocated` (the parent's, or zeros)
 * - allocated, sector bit set            → `data` at the sector's file offset
 * - allocated, sector bit clear: dynamic → `zero` (spec: the sector reads as zeros)
 *                          differencing  → `unallocated` (spec: the parent's sector)
 */
import { pushMerged, type ExtentKind, type LayerExtent } from '../../extent.js';
import { bitmapRuns } from './bitmap.js';
import { SECTOR } from './layout.js';

export type BlockState =
  | { readonly kind: 'unallocated' }
  | { readonly kind: 'full'; readonly dataOffset: number }
  | { readonly kind: 'empty'; readonly dataOffset: number }
  | { readonly kind: 'mixed'; readonly dataOffset: number; readonly bits: Buffer };

export interface MapGeometry {
  readonly blockSize: number;
  /** What a clear bitmap bit means in this disk. */
  readonly clearKind: Extract<ExtentKind, 'zero' | 'unallocated'>;
}

/** Extents of [offset, offset+length); `stateOf` must know every block the range touches. */
export function mapRange(
  offset: number,
  length: number,
  geo: MapGeometry,
  stateOf: (block: number) => BlockState,
): LayerExtent[] {
  const out: LayerExtent[] = [];
  const end = offset + length;
  const bs = geo.blockSize;
  for (let pos = offset; pos < end;) {
    const block = Math.floor(pos / bs);
    const blockStart = block * bs;
    const stop = Math.min(end, blockStart + bs);
    const state = stateOf(block);
    if (state.kind === 'unallocated') {
      pushMerged(out, { offset: pos, length: stop - pos, kind: 'unallocated' });
    } else if (state.kind === 'full') {
      pushMerged(out, {
        offset: pos,
        length: stop - pos,
        kind: 'data',
        fileOffset: state.dataOffset + (pos - blockStart),
      });
    } else if (state.kind === 'empty') {
      pushMerged(out, { offset: pos, length: stop - pos, kind: geo.clearKind });
    } else {
      const first = Math.floor((pos - blockStart) / SECTOR);
      const last = Math.ceil((stop - blockStart) / SECTOR);
      bitmapRuns(state.bits, first, last, (s, e, set) => {
        const a = Math.max(pos, blockStart + s * SECTOR);
        const b = Math.min(stop, blockStart + e * SECTOR);
        if (set)
          pushMerged(out, {
            offset: a,
            length: b - a,
            kind: 'data',
            fileOffset: state.dataOffset + (a - blockStart),
          });
        else pushMerged(out, { offset: a, length: b - a, kind: geo.clearKind });
      });
    }
    pos = stop;
  }
  return out;
}
