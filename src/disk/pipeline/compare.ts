/**
 * Compares the virtual contents of two disks, like `qemu-img compare`: equal when every
 * byte matches; when sizes differ, the extra tail of the larger must read as zeros
 * (unless `strict`, where a size difference alone is a mismatch).
 */
import type { Disk } from '../chain.js';
import { readPool } from '../io/buffer-pool.js';
import { chunks, type Chunk } from './chunks.js';
import { ProgressTracker, type ProgressObserver } from './progress.js';
import { isAllZero } from './zero.js';

export type CompareResult =
  | { readonly identical: true; readonly sizeA: number; readonly sizeB: number }
  | {
      readonly identical: false;
      readonly sizeA: number;
      readonly sizeB: number;
      /** First differing byte, or the smaller size for a strict size mismatch. */
      readonly offset: number;
      readonly reason: 'content' | 'size';
    };

async function* padded(disk: Disk, total: number, signal?: AbortSignal): AsyncGenerator<Chunk> {
  yield* chunks(disk, { signal });
  if (total > disk.virtualSize) yield { offset: disk.virtualSize, length: total - disk.virtualSize };
}

export async function compareDisks(
  a: Disk,
  b: Disk,
  options: { strict?: boolean; progress?: ProgressObserver; signal?: AbortSignal } = {},
): Promise<CompareResult> {
  const sizeA = a.virtualSize;
  const sizeB = b.virtualSize;
  if (options.strict && sizeA !== sizeB) {
    return { identical: false, sizeA, sizeB, offset: Math.min(sizeA, sizeB), reason: 'size' };
  }
  const total = Math.max(sizeA, sizeB);
  const tracker = new ProgressTracker(total, options.progress);
  const ia = padded(a, total, options.signal);
  const ib = padded(b, total, options.signal);
  let ca: Chunk | undefined;
  let cb: Chunk | undefined;
  let pos = 0;
  try {
    while (pos < total) {
      if (!ca || ca.offset + ca.length <= pos) {
        const done = ca;
        ca = undefined;
        if (done?.data) readPool.release(done.data);
        ca = (await ia.next()).value as Chunk;
      }
      if (!cb || cb.offset + cb.length <= pos) {
        const done = cb;
        cb = undefined;
        if (done?.data) readPool.release(done.data);
        cb = (await ib.next()).value as Chunk;
      }
      const end = Math.min(ca.offset + ca.length, cb.offset + cb.length);
      const sa = ca.data?.subarray(pos - ca.offset, end - ca.offset);
      const sb = cb.data?.subarray(pos - cb.offset, end - cb.offset);
      const diff = firstDifference(sa, sb, end - pos);
      if (diff >= 0) return { identical: false, sizeA, sizeB, offset: pos + diff, reason: 'content' };
      pos = end;
      tracker.advance(pos, 0);
    }
  } finally {
    if (ca?.data) readPool.release(ca.data);
    if (cb?.data) readPool.release(cb.data);
    await ia.return(undefined);
    await ib.return(undefined);
  }
  return { identical: true, sizeA, sizeB };
}

/** Index of the first differing byte, -1 when equal; undefined slices are zeros. */
function firstDifference(a: Buffer | undefined, b: Buffer | undefined, length: number): number {
  if (!a && !b) return -1;
  if (a && b) {
    if (a.equals(b)) return -1;
    for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i;
    return -1;
  }
  const only = (a ?? b) as Buffer;
  if (isAllZero(only)) return -1;
  return only.findIndex((x) => x !== 0);
}
