/**
 * Streams a disk as ordered chunks: `data` chunks carry bytes read from the chain, `zero`
 * chunks are ranges every layer says read as zeros (never read). Stored ranges are widened
 * to `blockSize` boundaries so a writer always sees whole blocks; reads run `depth` ahead
 * of the consumer so I/O (in libuv's pool) overlaps hashing/compressing (on the main
 * thread). Memory is bounded by chunkBytes × (depth + 1) whatever the disk size.
 */
import { isStored } from '../extent.js';
import type { Disk } from '../chain.js';
import { readPool } from '../io/buffer-pool.js';

export interface Chunk {
  readonly offset: number;
  readonly length: number;
  /**
   * Absent for ranges known to read as zeros. Often a buffer of `readPool`: a consumer
   * done with it calls `readPool.release(data)` so the next read reuses its pages (see
   * io/buffer-pool.ts; a consumer that keeps it, or hands it on, simply does not).
   */
  readonly data?: Buffer;
}

export interface ChunkOptions {
  /** Alignment of data ranges (the writer's block size). Default 64 KiB. */
  readonly blockSize?: number;
  /** Largest single read. Default 4 MiB (a multiple of blockSize). */
  readonly chunkBytes?: number;
  /** Reads in flight ahead of the consumer. Default 4. */
  readonly depth?: number;
  readonly signal?: AbortSignal;
}

interface Segment {
  offset: number;
  length: number;
  stored: boolean;
}

/** Data/zero segments, aligned to blockSize, merged and split at chunkBytes. */
export async function* segments(disk: Disk, blockSize: number, chunkBytes: number): AsyncGenerator<Segment> {
  const size = disk.virtualSize;
  let cursor = 0; // everything before cursor has been emitted
  let pending: Segment | undefined;
  function* emit(seg: Segment): Generator<Segment> {
    if (seg.length <= 0) return;
    if (pending && pending.stored === seg.stored && pending.offset + pending.length === seg.offset) {
      pending.length += seg.length;
    } else {
      if (pending) yield* split(pending);
      pending = { ...seg };
    }
    // Keep at most one chunk pending so a huge data run streams instead of accumulating.
    if (pending.stored && pending.length >= chunkBytes) {
      const whole = pending.length - (pending.length % chunkBytes);
      yield* split({ offset: pending.offset, length: whole, stored: true });
      pending = { offset: pending.offset + whole, length: pending.length - whole, stored: true };
      if (pending.length === 0) pending = undefined;
    }
  }
  function* split(seg: Segment): Generator<Segment> {
    if (!seg.stored) return yield seg;
    for (let o = seg.offset; o < seg.offset + seg.length; o += chunkBytes) {
      yield { offset: o, length: Math.min(chunkBytes, seg.offset + seg.length - o), stored: true };
    }
  }
  for await (const e of disk.map()) {
    if (!isStored(e.kind)) continue;
    const start = Math.max(cursor, e.offset - (e.offset % blockSize));
    const endRaw = e.offset + e.length;
    const end = Math.min(size, endRaw % blockSize === 0 ? endRaw : endRaw - (endRaw % blockSize) + blockSize);
    if (end <= cursor) continue;
    yield* emit({ offset: cursor, length: start - cursor, stored: false });
    yield* emit({ offset: start, length: end - start, stored: true });
    cursor = end;
  }
  yield* emit({ offset: cursor, length: size - cursor, stored: false });
  if (pending) yield* split(pending);
}

export async function* chunks(disk: Disk, options: ChunkOptions = {}): AsyncGenerator<Chunk> {
  const blockSize = options.blockSize ?? 64 * 1024;
  const chunkBytes = Math.max(blockSize, Math.floor((options.chunkBytes ?? 4 << 20) / blockSize) * blockSize);
  const depth = Math.max(1, options.depth ?? 4);
  const queue: Promise<Chunk>[] = [];
  const source = segments(disk, blockSize, chunkBytes);
  let exhausted = false;
  const fill = async (): Promise<void> => {
    while (!exhausted && queue.length < depth) {
      const next = await source.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      const seg = next.value;
      const p = seg.stored
        ? readChunk(disk, seg)
        : Promise.resolve({ offset: seg.offset, length: seg.length });
      p.catch(() => {}); // surfaced when awaited below; avoid an unhandled rejection meanwhile
      queue.push(p);
    }
  };
  try {
    await fill();
    while (queue.length > 0) {
      options.signal?.throwIfAborted();
      const chunk = await (queue.shift() as Promise<Chunk>);
      await fill();
      yield chunk;
    }
  } finally {
    await source.return(undefined);
  }
}

async function readChunk(disk: Disk, seg: Segment): Promise<Chunk> {
  if (!disk.readInto)
    return { offset: seg.offset, length: seg.length, data: await disk.read(seg.offset, seg.length) };
  const data = readPool.acquire(seg.length);
  try {
    await disk.readInto(seg.offset, data);
  } catch (err) {
    readPool.release(data);
    throw err;
  }
  return { offset: seg.offset, length: seg.length, data };
}
