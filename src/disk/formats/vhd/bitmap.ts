/**
 * Sector bitmaps: one bit per 512-byte sector of a block, most significant bit first, set
 * when the sector is stored in this file. Most bitmaps are all ones (QEMU, Hyper-V and
 * Ferry set every bit of an allocated block) or all zeros, so both are recognised with one
 * native compare and never walked bit by bit.
 */
import { MAX_BLOCK_SIZE, SECTOR } from './layout.js';

export type BitmapClass = 'full' | 'empty' | 'mixed';

const LARGEST = MAX_BLOCK_SIZE / SECTOR / 8;
const ONES = Buffer.alloc(LARGEST, 0xff);
const ZEROS = Buffer.alloc(LARGEST, 0);

/** Bytes of bitmap that carry bits for a block (the rest of the 512-byte padding is unused). */
export function usedBitmapBytes(blockSize: number): number {
  return blockSize / SECTOR / 8;
}

export function classifyBitmap(bits: Buffer): BitmapClass {
  if (bits.equals(ONES.subarray(0, bits.length))) return 'full';
  if (bits.equals(ZEROS.subarray(0, bits.length))) return 'empty';
  return 'mixed';
}

export function sectorSet(bits: Buffer, sector: number): boolean {
  return (((bits[sector >>> 3] as number) >>> (7 - (sector & 7))) & 1) === 1;
}

/**
 * Calls `emit(start, end, set)` for the maximal runs of equal bits in sectors
 * [first, end). Whole bytes that continue the current run are skipped eight at a time.
 */
export function bitmapRuns(
  bits: Buffer,
  first: number,
  end: number,
  emit: (start: number, end: number, set: boolean) => void,
): void {
  if (first >= end) return;
  let runStart = first;
  let runSet = sectorSet(bits, first);
  let i = first + 1;
  while (i < end) {
    if ((i & 7) === 0 && i + 8 <= end) {
      const byte = bits[i >>> 3] as number;
      if (byte === (runSet ? 0xff : 0)) {
        i += 8;
        continue;
      }
    }
    const set = sectorSet(bits, i);
    if (set !== runSet) {
      emit(runStart, i, runSet);
      runStart = i;
      runSet = set;
    }
    i++;
  }
  emit(runStart, end, runSet);
}
