/**
 * SHA-256 of the full raw virtual contents (zeros included): the contract
 * `ferry image checksum` prints, equal to `qemu-img convert -O raw … | sha256sum`.
 */
import { createHash } from 'node:crypto';
import type { Disk } from '../chain.js';
import { readPool } from '../io/buffer-pool.js';
import { chunks } from './chunks.js';
import { ProgressTracker, type ProgressObserver } from './progress.js';
import { ZERO_BUFFER_BYTES, zeros } from './zero.js';

export async function checksumDisk(
  disk: Disk,
  options: { progress?: ProgressObserver; signal?: AbortSignal } = {},
): Promise<string> {
  const hash = createHash('sha256');
  const tracker = new ProgressTracker(disk.virtualSize, options.progress);
  for await (const chunk of chunks(disk, { signal: options.signal })) {
    if (chunk.data) {
      hash.update(chunk.data);
      readPool.release(chunk.data);
    } else {
      for (let left = chunk.length; left > 0; left -= ZERO_BUFFER_BYTES) {
        hash.update(zeros(Math.min(left, ZERO_BUFFER_BYTES)));
      }
    }
    tracker.advance(chunk.offset + chunk.length, chunk.data?.length ?? 0);
  }
  return hash.digest('hex');
}
