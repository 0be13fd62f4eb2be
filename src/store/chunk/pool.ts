/**
 * Parallel chunk work. A {@link ChunkCodec} hashes a batch of blocks (every block) and
 * seals the new ones (compress + encrypt). {@link InlineCodec} does it on the calling
 * thread; {@link WorkerCodec} spreads batches over worker threads (zstd-napi and
 * node:crypto are synchronous, so threads are the only way to use more than one core).
 *
 * Batches live in {@link BatchBuffers}: a bounded set of slots, created on demand and
 * reused (no per-batch allocation, so no page faults), that also bounds the memory of the
 * pipeline. Slot memory is *shared* with the workers and introduced to each worker once;
 * requests then carry only a buffer id. Transferring ArrayBuffers instead (the earlier
 * design) made a new ArrayBuffer object per hop, and V8 counts each as fresh external
 * memory: the main thread then spent 17–20 % in "external memory pressure" GCs.
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

/** A shared buffer by id; `buffer` is sent only the first time a thread sees the id. */
export interface SharedRef {
  id: number;
  buffer?: SharedArrayBuffer;
}

export type WorkerRequest =
  /** Keys of the write about to start (no reply). */
  | { seq: number; op: 'init'; encKey: Uint8Array; idKey: Uint8Array }
  /** The write ended: forget its keys and buffers (no reply). */
  | { seq: number; op: 'reset' }
  | { seq: number; op: 'hash'; input: SharedRef; length: number; blockSize: number }
  | {
      seq: number;
      op: 'seal';
      input: SharedRef;
      output: SharedRef;
      length: number;
      blockSize: number;
      picks: Uint32Array;
      ids: Uint8Array;
    };

export type WorkerResponse =
  | { seq: number; op: 'hash'; ids: Uint8Array; digests: Uint8Array; zero: Uint8Array }
  | { seq: number; op: 'seal'; length: number; meta: Uint32Array; blobIds: Uint8Array }
  | { seq: number; op: 'error'; message: string };

interface Thread {
  readonly worker: Worker;
  pending: number;
  /** Ids of the shared buffers this worker already holds. */
  readonly known: Set<number>;
  readonly off: () => void;
}

/**
 * Workers left by finished writes, reset (no keys, no buffers) and unref'd: a server
 * writes an image per replication run, and starting threads (≈ 50 ms each, loading their
 * modules) was a fixed cost of every incremental run.
 */
const parked: Worker[] = [];
const MAX_PARKED = 8;

function takeWorker(): Worker {
  const w = parked.pop();
  if (w) {
    w.removeAllListeners('exit').removeAllListeners('error');
    return w;
  }
  const worker = new Worker(new URL('./worker.js', import.meta.url));
  worker.unref();
  return worker;
}

function park(worker: Worker): void {
  if (parked.length >= MAX_PARKED) {
    void worker.terminate();
    return;
  }
  worker.postMessage({ seq: 0, op: 'reset' } satisfies WorkerRequest);
  // A parked worker that fails just leaves the pool (an unhandled 'error' would throw).
  worker.on('error', () => {});
  worker.once('exit', () => parked.splice(parked.indexOf(worker) >>> 0, 1));
  parked.push(worker);
}

const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export class WorkerCodec implements ChunkCodec {
  readonly threads: number;
  readonly #threads: Thread[] = [];
  readonly #waiting = new Map<number, { resolve: (r: WorkerResponse) => void; reject: (e: Error) => void }>();
  #seq = 0;
  #failure: Error | undefined;
  readonly #bufferIds = new WeakMap<SharedArrayBuffer, number>();
  #nextBufferId = 0;

  constructor(keys: RepoKeys, threads: number) {
    this.threads = threads;
    for (let i = 0; i < threads; i++) {
      const worker = takeWorker();
      const onMessage = (m: WorkerResponse) => {
        t.pending--;
        const w = this.#waiting.get(m.seq);
        this.#waiting.delete(m.seq);
        w?.resolve(m);
      };
      const onError = (err: Error) => this.#fail(err);
      const onExit = (code: number) => this.#fail(new Error(`chunk worker exited with code ${code}`));
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
      const off = () => worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      const t: Thread = { worker, pending: 0, known: new Set(), off };
      worker.postMessage({
        seq: 0,
        op: 'init',
        encKey: keys.encKey,
        idKey: keys.idKey,
      } satisfies WorkerRequest);
      this.#threads.push(t);
    }
  }

  /** Threads to use by default: every core, at most 8. */
  static defaultThreads(): number {
    return Math.max(1, Math.min(8, availableParallelism()));
  }

  async hash(slot: BatchSlot, length: number, blockSize: number): Promise<HashResult> {
    const r = await this.#send((t) => ({
      seq: 0,
      op: 'hash',
      input: this.#ref(t, slot.input),
      length,
      blockSize,
    }));
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
    const r = await this.#send((t) => ({
      seq: 0,
      op: 'seal',
      input: this.#ref(t, slot.input),
      output: this.#ref(t, slot.output),
      length,
      blockSize,
      picks: Uint32Array.from(picks),
      ids: new Uint8Array(ids),
    }));
    if (r.op !== 'seal') throw new InternalError('chunk worker answered out of protocol');
    return unpackBlobs({ bytes: slot.output.subarray(0, r.length), meta: r.meta, ids: asBuffer(r.blobIds) });
  }

  /** Names a slot buffer for thread `t`, handing it the memory the first time. */
  #ref(t: Thread, b: Buffer): SharedRef {
    const sab = sharedOf(b);
    let id = this.#bufferIds.get(sab);
    if (id === undefined) this.#bufferIds.set(sab, (id = this.#nextBufferId++));
    if (t.known.has(id)) return { id };
    t.known.add(id);
    return { id, buffer: sab };
  }

  /** Sends a request to the least busy thread; the slot's memory stays shared. */
  async #send(make: (t: Thread) => WorkerRequest): Promise<WorkerResponse> {
    if (this.#failure) throw this.#failure;
    const seq = ++this.#seq;
    const t = this.#threads.reduce((a, b) => (b.pending < a.pending ? b : a));
    t.pending++;
    const r = await new Promise<WorkerResponse>((resolve, reject) => {
      this.#waiting.set(seq, { resolve, reject });
      t.worker.postMessage({ ...make(t), seq });
    });
    if (r.op === 'error') throw new InternalError(`chunk worker failed: ${r.message}`);
    return r;
  }

  #fail(err: Error): void {
    this.#failure ??= new InternalError(`chunk worker failed: ${err.message}`, {}, { cause: err });
    for (const w of this.#waiting.values()) w.reject(this.#failure);
    this.#waiting.clear();
  }

  async close(): Promise<void> {
    // Healthy idle workers are kept for the next write; any doubt (a failure, a request
    // still running) ends them.
    const healthy = this.#failure === undefined && this.#waiting.size === 0;
    this.#failure ??= new InternalError('chunk codec closed');
    for (const t of this.#threads) t.off();
    if (healthy) this.#threads.forEach((t) => park(t.worker));
    else await Promise.all(this.#threads.map((t) => t.worker.terminate()));
  }
}

function sharedOf(b: Buffer): SharedArrayBuffer {
  if (b.byteOffset !== 0 || b.length !== b.buffer.byteLength || !(b.buffer instanceof SharedArrayBuffer)) {
    throw new InternalError('batch buffers must be whole SharedArrayBuffers (BatchBuffers)');
  }
  return b.buffer;
}

/** Slot memory: shared with the workers (see the top of this file). */
function whole(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size));
}

export function createCodec(keys: RepoKeys, threads = WorkerCodec.defaultThreads()): ChunkCodec {
  return threads > 0 ? new WorkerCodec(keys, threads) : new InlineCodec(keys);
}

/**
 * A bounded set of batch slots, created when first needed (a write of a few changed
 * ranges touches a few, not the whole set) and reused; acquire waits when all are in use,
 * which bounds the pipeline.
 */
export class BatchBuffers {
  readonly #free: BatchSlot[] = [];
  readonly #waiters: ((b: BatchSlot) => void)[] = [];
  /** Output buffers handed back by packs once stored (see {@link BatchBuffers.newOutput}). */
  readonly #outputs: Buffer[] = [];
  readonly #outputBytes: number;
  #unborn: number;
  readonly size: number;

  constructor(count: number, size: number, blockSize: number) {
    this.size = size;
    this.#outputBytes = size + SEAL_OVERHEAD * Math.ceil(size / blockSize);
    this.#unborn = count;
  }

  /** Bytes a slot's output holds (every block sealed uncompressed). */
  get outputBytes(): number {
    return this.#outputBytes;
  }

  /**
   * A slot whose sealed output now belongs to packs gets a fresh (recycled) output; the old
   * one comes back through {@link BatchBuffers.recycleOutput} once those packs are stored.
   */
  newOutput(): Buffer {
    return this.#outputs.pop() ?? whole(this.#outputBytes);
  }

  recycleOutput(b: Buffer): void {
    if (b.length !== this.#outputBytes) throw new InternalError('recycled a foreign output buffer');
    this.#outputs.push(b);
  }

  async acquire(): Promise<BatchSlot> {
    const b = this.#free.pop();
    if (b) return b;
    if (this.#unborn > 0) {
      this.#unborn--;
      return { input: whole(this.size), output: this.newOutput() };
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release(b: BatchSlot): void {
    const w = this.#waiters.shift();
    if (w) w(b);
    else this.#free.push(b);
  }
}
