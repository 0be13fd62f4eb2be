/** What every disk of one image write shares. */
import type { BatchBuffers, ChunkCodec } from '../chunk/pool.js';
import type { RepoLock } from '../lock/lock.js';
import type { PackSink } from '../pack/packer.js';
import type { Repository } from '../repo/repository.js';

export interface WriteContext {
  readonly repo: Repository;
  readonly imageId: string;
  readonly sink: PackSink;
  readonly codec: ChunkCodec;
  readonly buffers: BatchBuffers;
  /** Ids a batch decided to store that are not in the sink yet (dedup across batches). */
  readonly reserved: Set<string>;
  readonly lock: RepoLock;
  /** Batches in flight (each holds one buffer of `buffers.size`). */
  readonly maxInflight: number;
  /** Least time between two checkpoints of a disk. */
  readonly checkpointMs: number;
  readonly signal?: AbortSignal | undefined;
  /** Virtual bytes handled and bytes read since the last call. */
  progress(virtualBytes: number, bytesRead: number): void;
}
