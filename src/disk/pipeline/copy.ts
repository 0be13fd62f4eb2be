/**
 * Copies a disk into a writer (the heart of `convert`). Zero and unallocated ranges are
 * never read; data blocks that turn out to be all zeros are not passed to the writer.
 */
import type { Disk } from '../chain.js';
import type { DiskWriter } from '../layer.js';
import { readPool } from '../io/buffer-pool.js';
import { chunks } from './chunks.js';
import { ProgressTracker, type ProgressObserver } from './progress.js';
import { isAllZero } from './zero.js';

export interface CopyOptions {
  readonly progress?: ProgressObserver;
  readonly signal?: AbortSignal;
}

export interface CopyResult {
  readonly virtualSize: number;
  readonly bytesRead: number;
  readonly blocksWritten: number;
}

export async function copyDisk(
  disk: Disk,
  writer: DiskWriter,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const tracker = new ProgressTracker(disk.virtualSize, options.progress);
  const bs = writer.blockSize;
  let bytesRead = 0;
  let blocksWritten = 0;
  const lends = writer.releasesBlocks === true;
  for await (const chunk of chunks(disk, { blockSize: bs, signal: options.signal })) {
    const data = chunk.data;
    if (data) {
      try {
        for (let off = 0; off < data.length; off += bs) {
          const block = data.subarray(off, Math.min(off + bs, data.length));
          if (isAllZero(block)) continue;
          if (lends) readPool.retain(block);
          await writer.writeBlock(chunk.offset + off, block);
          blocksWritten++;
        }
      } finally {
        // The loop's own hold; a writer that keeps blocks owns the buffer instead.
        if (lends) readPool.release(data);
      }
      bytesRead += data.length;
    }
    tracker.advance(chunk.offset + chunk.length, data?.length ?? 0);
  }
  await writer.finish();
  return { virtualSize: disk.virtualSize, bytesRead, blocksWritten };
}
