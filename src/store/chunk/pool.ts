/**
 * Parallel chunk work. A {@link ChunkCodec} hashes a batch of blocks (every block) and
 * seals the new ones (compress + encrypt). {@link InlineCodec} does it on the calling
 * thread; {@link WorkerCodec} spreads batches over worker threads (zstd-napi and
 * node:crypto are synchronous, so threads are the only way to use more than one core).
 *
 * Batches live in {@link BatchBuffers}: a fixed ring of SharedArrayBuffers the workers read
 * without a copy, which also bounds the memory of the whole pipeline.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { InternalError } from '../../errors/index.js';
import type { RepoKeys } from '../crypto/keys.js';
import type { SealedBlob } from './blob.js';
import { hashBlocks, sealBlocks, unpackBlobs, type HashResult } from './work.js';

export interface ChunkCodec {
  readonly threads: number;
  hash(batch: Buffer, blockSize: number): Promise<HashResult>;
  seal(batch: Buffer, blockSize: number, picks: readonly number[], ids: Buffer): Promise<SealedBlob[]>;
  close(): Promise<void>;
}

export class InlineCodec implements ChunkCodec {
  readonly threads = 0;
  readonly #keys: RepoKeys;
  constructor(keys: RepoKeys) {
    this.#keys = keys;
  }
  async hash(batch: Buffer, blockSize: number): Promise<HashResult> {
    return hashBlocks(this.#keys.idKey, batch, blockSize);
  }
  async seal(batch: Buffer, blockSize: number, picks: readonly number[], ids: Buffer): Promise<SealedBlob[]> {
    return unpackBlobs(sealBlocks(this.#keys.encKey, batch, blockSize, picks, ids));
  }
  async close(): Promise<void> {}
}

export type WorkerRequest =
  | { seq: number; op: 'hash'; shared: SharedArrayBuffer; offset: number; length: number; blockSize: number }
  | {
      seq: number;
      op: 'seal';
      shared: SharedArrayBuffer;
      offset: number;
      length: number;
      blockSize: number;
      picks: number[];
      ids: Uint8Array;
    };

export type WorkerResponse =
  | { seq: number; op: 'hash'; ids: Uint8Array; digests: Uint8Array; zero: Uint8Array }
  | { seq: number; op: 'seal'; bytes: Uint8Array; meta: Uint32Array; blobIds: Uint8Array }
  | { seq: number; op: 'error'; message: string };

interface Slot {
  readonly worker: Worker;
  pending: number;
}

const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export class WorkerCodec implements ChunkCodec {
  readonly threads: number;
  readonly #slots: Slot[] = [];
  readonly #waiting = new Map<number, { resolve: (r: WorkerResponse) => void; reject: (e: Error) => void }>();
  #seq = 0;
  #failure: Error | undefined;

  constructor(keys: RepoKeys, threads: number) {
    this.threads = threads;
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(new URL('./worker.js', import.meta.url), {
        workerData: { encKey: keys.encKey, idKey: keys.idKey },
      });
      worker.unref();
      const slot: Slot = { worker, pending: 0 };
      worker.on('message', (m: WorkerResponse) => {
        slot.pending--;
        const w = this.#waiting.get(m.seq);
        this.#waiting.delete(m.seq);
        w?.resolve(m);
      });
      worker.on('error', (err) => this.#fail(err));
      worker.on('exit', (code) => {
        if (code !== 0) this.#fail(new Error(`chunk worker exited with code ${code}`));
      });
      this.#slots.push(slot);
    }
  }

  /** Threads to use by default: every core, at most 8. */
  static defaultThreads(): number {
    return Math.max(1, Math.min(8, availableParallelism()));
  }

  async hash(batch: Buffer, blockSize: number): Promise<HashResult> {
    const r = await this.#send(
      (seq, shared) => ({
        seq,
        op: 'hash',
        shared,
        offset: batch.byteOffset,
        length: batch.length,
        blockSize,
      }),
      batch,
    );
    if (r.op !== 'hash') throw new InternalError('chunk worker answered out of protocol');
    return { ids: asBuffer(r.ids), digests: asBuffer(r.digests), zero: r.zero };
  }

  async seal(batch: Buffer, blockSize: number, picks: readonly number[], ids: Buffer): Promise<SealedBlob[]> {
    if (picks.length === 0) return [];
    const r = await this.#send(
      (seq, shared) => ({
        seq,
        op: 'seal',
        shared,
        offset: batch.byteOffset,
        length: batch.length,
        blockSize,
        picks: [...picks],
        ids: new Uint8Array(ids),
      }),
      batch,
    );
    if (r.op !== 'seal') throw new InternalError('chunk worker answered out of protocol');
    return unpackBlobs({ bytes: asBuffer(r.bytes), meta: r.meta, ids: asBuffer(r.blobIds) });
  }

  #send(
    make: (seq: number, shared: SharedArrayBuffer) => WorkerRequest,
    batch: Buffer,
  ): Promise<WorkerResponse> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (!(batch.buffer instanceof SharedArrayBuffer)) {
      return Promise.reject(new InternalError('worker batches must live in BatchBuffers'));
    }
    const seq = ++this.#seq;
    const slot = this.#slots.reduce((a, b) => (b.pending < a.pending ? b : a));
    slot.pending++;
    return new Promise<WorkerResponse>((resolve, reject) => {
      this.#waiting.set(seq, { resolve, reject });
      slot.worker.postMessage(make(seq, batch.buffer as SharedArrayBuffer));
    }).then((r) => {
      if (r.op === 'error') throw new InternalError(`chunk worker failed: ${r.message}`);
      return r;
    });
  }

  #fail(err: Error): void {
    this.#failure ??= new InternalError(`chunk worker failed: ${err.message}`, {}, { cause: err });
    for (const w of this.#waiting.values()) w.reject(this.#failure);
    this.#waiting.clear();
  }

  async close(): Promise<void> {
    this.#failure ??= new InternalError('chunk codec closed');
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }
}

export function createCodec(keys: RepoKeys, threads = WorkerCodec.defaultThreads()): ChunkCodec {
  return threads > 0 ? new WorkerCodec(keys, threads) : new InlineCodec(keys);
}

/** A fixed ring of shared batch buffers: acquire waits when all are in use. */
export class BatchBuffers {
  readonly #free: Buffer[] = [];
  readonly #waiters: ((b: Buffer) => void)[] = [];
  readonly size: number;

  constructor(count: number, size: number) {
    this.size = size;
    for (let i = 0; i < count; i++) this.#free.push(Buffer.from(new SharedArrayBuffer(size)));
  }

  async acquire(): Promise<Buffer> {
    const b = this.#free.pop();
    if (b) return b;
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release(b: Buffer): void {
    const w = this.#waiters.shift();
    if (w) w(b);
    else this.#free.push(b);
  }
}
