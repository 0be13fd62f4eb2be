/**
 * Parallel chunk work. A {@link ChunkCodec} hashes a batch of blocks (every block) and
 * seals the new ones (compress + encrypt). {@link InlineCodec} does it on the calling
 * thread; {@link WorkerCodec} spreads batches over worker threads (zstd-napi and
 * node:crypto are synchronous, so threads are the only way to use more than one core).
 *
 * Batches live in {@link BatchBuffers}: a fixed set of slots allocated once per write (no
 * per-batch allocation, so no page faults) that also bounds the memory of the pipeline. A
 * slot's buffers are *transferred* to a worker and back (zero-copy ping-pong), not shared:
 * V8 copies in and out of SharedArrayBuffers with slow relaxed-atomic moves.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { InternalError } from '../../errors/index.js';
import { SEAL_OVERHEAD } from '../crypto/aead.js';
import type { RepoKeys } from '../crypto/keys.js';
import type { SealedBlob } from './blob.js';
import { hashBlocks, sealBlocks, unpackBlobs, type HashResult } from './work.js';

/** One batch's memory: the blocks read, and room for them sealed. Owned by one party at a time. */
export interface BatchSlot {
  input: Buffer;
  output: Buffer;
}

export interface ChunkCodec {
  readonly threads: number;
  /** Hashes the first `length` bytes of `slot.input`. */
  hash(slot: BatchSlot, length: number, blockSize: number): Promise<HashResult>;
  /** Seals the picked blocks into `slot.output`; the blobs' bytes are views of it. */
  seal(
    slot: BatchSlot,
    length: number,
    blockSize: number,
    picks: readonly number[],
    ids: Buffer,
  ): Promise<SealedBlob[]>;
  close(): Promise<void>;
}

export class InlineCodec implements ChunkCodec {
  readonly threads = 0;
  readonly #keys: RepoKeys;
  constructor(keys: RepoKeys) {
    this.#keys = keys;
  }
  async hash(slot: BatchSlot, length: number, blockSize: number): Promise<HashResult> {
    return hashBlocks(this.#keys.idKey, slot.input.subarray(0, length), blockSize);
  }
  async seal(
    slot: BatchSlot,
    length: number,
    blockSize: number,
    picks: readonly number[],
    ids: Buffer,
  ): Promise<SealedBlob[]> {
    const input = slot.input.subarray(0, length);
    return unpackBlobs(sealBlocks(this.#keys.encKey, input, blockSize, picks, ids, slot.output));
  }
  async close(): Promise<void> {}
}

export type WorkerRequest =
  | { seq: number; op: 'hash'; input: ArrayBuffer; length: number; blockSize: number }
  | {
      seq: number;
      op: 'seal';
      input: ArrayBuffer;
      output: ArrayBuffer;
      length: number;
      blockSize: number;
      picks: number[];
      ids: Uint8Array;
    };

export type WorkerResponse =
  | { seq: number; op: 'hash'; input: ArrayBuffer; ids: Uint8Array; digests: Uint8Array; zero: Uint8Array }
  | {
      seq: number;
      op: 'seal';
      input: ArrayBuffer;
      output: ArrayBuffer;
      length: number;
      meta: Uint32Array;
      blobIds: Uint8Array;
    }
  | { seq: number; op: 'error'; message: string; input?: ArrayBuffer; output?: ArrayBuffer };

interface Thread {
  readonly worker: Worker;
  pending: number;
}

const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export class WorkerCodec implements ChunkCodec {
  readonly threads: number;
  readonly #threads: Thread[] = [];
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
      const t: Thread = { worker, pending: 0 };
      worker.on('message', (m: WorkerResponse) => {
        t.pending--;
        const w = this.#waiting.get(m.seq);
        this.#waiting.delete(m.seq);
        w?.resolve(m);
      });
      worker.on('error', (err) => this.#fail(err));
      worker.on('exit', (code) => {
        if (code !== 0) this.#fail(new Error(`chunk worker exited with code ${code}`));
      });
      this.#threads.push(t);
    }
  }

  /** Threads to use by default: every core, at most 8. */
  static defaultThreads(): number {
    return Math.max(1, Math.min(8, availableParallelism()));
  }

  async hash(slot: BatchSlot, length: number, blockSize: number): Promise<HashResult> {
    const input = ownedBuffer(slot.input);
    const r = await this.#send({ seq: 0, op: 'hash', input, length, blockSize }, [input], slot);
    if (r.op !== 'hash') throw new InternalError('chunk worker answered out of protocol');
    return { ids: asBuffer(r.ids), digests: asBuffer(r.digests), zero: r.zero };
  }

  async seal(
    slot: BatchSlot,
    length: number,
    blockSize: number,
    picks: readonly number[],
    ids: Buffer,
  ): Promise<SealedBlob[]> {
    if (picks.length === 0) return [];
    const input = ownedBuffer(slot.input);
    const output = ownedBuffer(slot.output);
    const r = await this.#send(
      { seq: 0, op: 'seal', input, output, length, blockSize, picks: [...picks], ids: new Uint8Array(ids) },
      [input, output],
      slot,
    );
    if (r.op !== 'seal') throw new InternalError('chunk worker answered out of protocol');
    return unpackBlobs({ bytes: slot.output.subarray(0, r.length), meta: r.meta, ids: asBuffer(r.blobIds) });
  }

  /** Sends a request transferring the slot's buffers; puts them back in the slot on reply. */
  async #send(req: WorkerRequest, transfer: ArrayBuffer[], slot: BatchSlot): Promise<WorkerResponse> {
    if (this.#failure) throw this.#failure;
    const seq = ++this.#seq;
    const t = this.#threads.reduce((a, b) => (b.pending < a.pending ? b : a));
    t.pending++;
    const r = await new Promise<WorkerResponse>((resolve, reject) => {
      this.#waiting.set(seq, { resolve, reject });
      t.worker.postMessage({ ...req, seq }, transfer);
    });
    if (r.input) slot.input = Buffer.from(r.input);
    if ('output' in r && r.output) slot.output = Buffer.from(r.output);
    if (r.op === 'error') throw new InternalError(`chunk worker failed: ${r.message}`);
    return r;
  }

  #fail(err: Error): void {
    this.#failure ??= new InternalError(`chunk worker failed: ${err.message}`, {}, { cause: err });
    for (const w of this.#waiting.values()) w.reject(this.#failure);
    this.#waiting.clear();
  }

  async close(): Promise<void> {
    this.#failure ??= new InternalError('chunk codec closed');
    await Promise.all(this.#threads.map((t) => t.worker.terminate()));
  }
}

function ownedBuffer(b: Buffer): ArrayBuffer {
  if (b.byteOffset !== 0 || b.length !== b.buffer.byteLength || b.buffer instanceof SharedArrayBuffer) {
    throw new InternalError('batch buffers must own their whole ArrayBuffer (BatchBuffers)');
  }
  return b.buffer as ArrayBuffer;
}

/** new ArrayBuffer (not Buffer.alloc*): never a slice of Node's pool, so transferable. */
function whole(size: number): Buffer {
  return Buffer.from(new ArrayBuffer(size));
}

export function createCodec(keys: RepoKeys, threads = WorkerCodec.defaultThreads()): ChunkCodec {
  return threads > 0 ? new WorkerCodec(keys, threads) : new InlineCodec(keys);
}

/**
 * A fixed set of batch slots, allocated once per write; acquire waits when all are in use,
 * which bounds the pipeline.
 */
export class BatchBuffers {
  readonly #free: BatchSlot[] = [];
  readonly #waiters: ((b: BatchSlot) => void)[] = [];
  /** Output buffers handed back by packs once stored (see {@link BatchBuffers.newOutput}). */
  readonly #outputs: Buffer[] = [];
  readonly #outputBytes: number;
  readonly size: number;

  constructor(count: number, size: number, blockSize: number) {
    this.size = size;
    this.#outputBytes = size + SEAL_OVERHEAD * Math.ceil(size / blockSize);
    for (let i = 0; i < count; i++) this.#free.push({ input: whole(size), output: whole(this.#outputBytes) });
  }

  /**
   * A slot whose sealed output now belongs to packs gets a fresh (recycled) output; the old
   * one comes back through {@link BatchBuffers.recycleOutput} once those packs are stored.
   */
  newOutput(): Buffer {
    return this.#outputs.pop() ?? whole(this.#outputBytes);
  }

  recycleOutput(b: Buffer): void {
    if (b.length !== this.#outputBytes)
      throw new InternalError('recycled a detached or foreign output buffer');
    this.#outputs.push(b);
  }

  async acquire(): Promise<BatchSlot> {
    const b = this.#free.pop();
    if (b) return b;
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release(b: BatchSlot): void {
    const w = this.#waiters.shift();
    if (w) w(b);
    else this.#free.push(b);
  }
}
