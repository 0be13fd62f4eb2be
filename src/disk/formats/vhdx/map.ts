/**
 * Pure mapping: BAT (+ sector bitmaps) → tagged extents.
 *
 * | payload state                       | extent                                        |
 * | ----------------------------------- | --------------------------------------------- |
 * | FULLY_PRESENT (6)                   | data (fileOffset in this file)                |
 * | ZERO (2)                            | zero (the disk says zeros, even over a parent) |
 * | NOT_PRESENT, UNDEFINED, UNMAPPED    | unallocated: the parent's bytes in a          |
 * |   (0, 1, 3, and v0.95's 5)          |   differencing disk, zeros at the bottom of a |
 * |                                     |   chain (what QEMU reads for dynamic disks)   |
 * | PARTIALLY_PRESENT (7, differencing) | per sector: bit set → data, clear → unallocated |
 */
import { InternalError } from '../../../errors/index.js';
import { pushMerged, type LayerExtent } from '../../extent.js';
import { payloadIndex, type Bat } from './bat.js';
import { PAYLOAD_FULLY_PRESENT, PAYLOAD_PARTIALLY_PRESENT, PAYLOAD_ZERO } from './layout.js';

/**
 * Extents of [offset, offset+length) (inside the virtual disk). `bitmapOf(block)` returns
 * the slice of the sector bitmap covering payload block `block` (sectorsPerBlock bits,
 * bit 0 of byte 0 = first sector, spec 2.4); the reader loads it before calling.
 */
export function mapRange(
  bat: Bat,
  offset: number,
  length: number,
  bitmapOf: (block: number) => Buffer | undefined,
): LayerExtent[] {
  const g = bat.geometry;
  const out: LayerExtent[] = [];
  const end = offset + length;
  for (let pos = offset; pos < end;) {
    const block = Math.floor(pos / g.blockSize);
    const blockStart = block * g.blockSize;
    const stop = Math.min(end, blockStart + g.blockSize);
    const index = payloadIndex(g, block);
    const state = bat.state(index);
    if (state === PAYLOAD_FULLY_PRESENT) {
      pushMerged(out, {
        offset: pos,
        length: stop - pos,
        kind: 'data',
        fileOffset: bat.offset(index) + pos - blockStart,
      });
    } else if (state === PAYLOAD_ZERO) {
      pushMerged(out, { offset: pos, length: stop - pos, kind: 'zero' });
    } else if (state === PAYLOAD_PARTIALLY_PRESENT) {
      const bitmap = bitmapOf(block);
      if (!bitmap) throw new InternalError(`vhdx: sector bitmap of block ${block} not loaded`);
      mapPartial(out, bitmap, g.logicalSectorSize, blockStart, bat.offset(index), pos, stop);
    } else {
      pushMerged(out, { offset: pos, length: stop - pos, kind: 'unallocated' });
    }
    pos = stop;
  }
  return out;
}

/** Splits [pos, stop) of a partially present block into runs of set / clear bitmap bits. */
function mapPartial(
  out: LayerExtent[],
  bitmap: Buffer,
  sectorSize: number,
  blockStart: number,
  fileOffset: number,
  pos: number,
  stop: number,
): void {
  const first = Math.floor((pos - blockStart) / sectorSize);
  const last = Math.ceil((stop - blockStart) / sectorSize); // exclusive
  for (const [s0, s1, set] of bitRuns(bitmap, first, last)) {
    const a = Math.max(pos, blockStart + s0 * sectorSize);
    const b = Math.min(stop, blockStart + s1 * sectorSize);
    if (set)
      pushMerged(out, { offset: a, length: b - a, kind: 'data', fileOffset: fileOffset + a - blockStart });
    else pushMerged(out, { offset: a, length: b - a, kind: 'unallocated' });
  }
}

/**
 * Maximal runs of equal bits in [first, last) of an LSB-first bitmap, as [start, end, set].
 * Whole 0x00 / 0xff bytes are skipped in one step, so a 256 MiB block (64 KiB of bitmap)
 * costs at most 64 K iterations.
 */
export function* bitRuns(bitmap: Buffer, first: number, last: number): Generator<[number, number, boolean]> {
  let i = first;
  while (i < last) {
    const set = bitAt(bitmap, i);
    let j = i + 1;
    while (j < last) {
      if ((j & 7) === 0 && j + 8 <= last) {
        const byte = bitmap[j >>> 3] as number;
        if (byte === (set ? 0xff : 0x00)) {
          j += 8;
          continue;
        }
      }
      if (bitAt(bitmap, j) !== set) break;
      j++;
    }
    yield [i, j, set];
    i = j;
  }
}

function bitAt(bitmap: Buffer, i: number): boolean {
  return (((bitmap[i >>> 3] as number) >>> (i & 7)) & 1) === 1;
}
