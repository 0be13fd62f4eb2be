/**
 * Turns sealed blobs into stored packs and index files, in the order crash safety needs:
 * the pack is stored, *then* an index file naming it, *then* its chunks count as present
 * (docs/store.md, invariant 2). Data and tree blobs go to separate packs.
 *
 * Every blob added gets a sequence number; {@link PackSink.watermark} is the highest
 * number such that every blob up to it is indexed. A writer uses it to know which of its
 * manifest pages are safe to checkpoint.
 */
import { createHash } from 'node:crypto';
import { BLOB_DATA, BLOB_TREE, type BlobType, type SealedBlob } from '../chunk/blob.js';
import { idKey, type ChunkIndex } from '../index/chunk-index.js';
import { encodeIndex, type IndexedPack } from '../index/format.js';
import { DEFAULT_PACK_BYTES, indexKey, MAX_PACK_ENTRIES, packKey } from '../layout.js';
import type { Repository } from '../repo/repository.js';
import { buildPack } from './format.js';

interface OpenPack {
  blobs: SealedBlob[];
  bytes: number;
  firstSeq: number;
  /** Buffers holding blob bytes that this pack must keep alive until it is stored. */
  owners: Set<BufferOwner>;
}

/**
 * Keeps a buffer that blobs point into alive until every pack holding some of them is
 * stored, then hands it back (the writer's sealed batch outputs: no copy into the pack).
 */
export class BufferOwner {
  #refs = 0;
  #done = false;
  readonly #onFree: () => void;

  constructor(onFree: () => void) {
    this.#onFree = onFree;
  }

  get refs(): number {
    return this.#refs;
  }

  ref(): void {
    this.#refs++;
  }

  unref(): void {
    if (--this.#refs === 0 && this.#done) this.#onFree();
  }

  /** No more blobs will be added from this buffer. */
  done(): void {
    this.#done = true;
    if (this.#refs === 0) this.#onFree();
  }
}

export interface PackSinkOptions {
  /** Target bytes of blobs per pack (default 16 MiB). */
  readonly packBytes?: number;
  /** Packs uploading at once (default 2). */
  readonly uploads?: number;
  /** Called after each pack is indexed. */
  readonly onIndexed?: () => void;
}

export class PackSink {
  readonly #repo: Repository;
  readonly #index: ChunkIndex;
  readonly #packBytes: number;
  readonly #uploads: number;
  readonly #onIndexed: (() => void) | undefined;
  readonly #open = new Map<BlobType, OpenPack>();
  readonly #inflight = new Map<Promise<void>, number>();
  /** Ids added to a pack that is not indexed yet. */
  readonly #pending = new Set<string>();
  #seq = 0;
  #failure: unknown;
  /** First sequence number of the earliest pack that failed to upload (never indexed). */
  #failedSeq = Infinity;
  packsWritten = 0;

  constructor(repo: Repository, index: ChunkIndex, options: PackSinkOptions = {}) {
    this.#repo = repo;
    this.#index = index;
    this.#packBytes = options.packBytes ?? DEFAULT_PACK_BYTES;
    this.#uploads = Math.max(1, options.uploads ?? 2);
    this.#onIndexed = options.onIndexed;
  }

  /** Sequence number of the last blob added. */
  get seq(): number {
    return this.#seq;
  }

  /** True when the chunk is stored, or queued to be, by this sink. */
  has(id: Buffer): boolean {
    return this.#index.has(id) || this.#pending.has(idKey(id));
  }

  hasKey(key: string): boolean {
    return this.#index.hasKey(key) || this.#pending.has(key);
  }

  /**
   * Queues a blob. Its bytes are used in place (not copied): they must stay unchanged until
   * the pack is stored — pass the `owner` of the buffer they live in when it is reused.
   */
  add(blob: SealedBlob, owner?: BufferOwner): number {
    this.#check();
    const seq = ++this.#seq;
    let open = this.#open.get(blob.type);
    if (!open) {
      open = { blobs: [], bytes: 0, firstSeq: seq, owners: new Set() };
      this.#open.set(blob.type, open);
    }
    if (owner && !open.owners.has(owner)) {
      open.owners.add(owner);
      owner.ref();
    }
    open.blobs.push(blob);
    open.bytes += blob.length;
    this.#pending.add(idKey(blob.id));
    if (open.bytes >= this.#packBytes || open.blobs.length >= MAX_PACK_ENTRIES) this.#close(blob.type);
    return seq;
  }

  /** Highest sequence number up to which every blob is stored and indexed. */
  watermark(): number {
    let low = Math.min(this.#seq + 1, this.#failedSeq);
    for (const p of this.#open.values()) low = Math.min(low, p.firstSeq);
    for (const first of this.#inflight.values()) low = Math.min(low, first);
    return low - 1;
  }

  /** Waits while too many packs are uploading (bounds memory). */
  async backpressure(): Promise<void> {
    while (this.#inflight.size >= this.#uploads) await Promise.race(this.#inflight.keys()).catch(() => {});
    this.#check();
  }

  /** Closes the open packs and waits until everything added is stored and indexed. */
  async flush(): Promise<void> {
    for (const type of [BLOB_DATA, BLOB_TREE] as const) this.#close(type);
    while (this.#inflight.size > 0) await Promise.allSettled(this.#inflight.keys());
    this.#check();
  }

  #close(type: BlobType): void {
    const open = this.#open.get(type);
    if (!open || open.blobs.length === 0) return;
    this.#open.delete(type);
    const p: Promise<void> = this.#upload(open.blobs).then(
      () => {
        this.#inflight.delete(p);
        for (const o of open.owners) o.unref();
        this.#onIndexed?.();
      },
      (err: unknown) => {
        // Record the failure before forgetting the upload: the watermark must never pass it.
        this.#failedSeq = Math.min(this.#failedSeq, open.firstSeq);
        this.#failure ??= err;
        this.#inflight.delete(p);
      },
    );
    this.#inflight.set(p, open.firstSeq);
  }

  async #upload(blobs: SealedBlob[]): Promise<void> {
    const pack = buildPack(this.#repo.keys.encKey, blobs);
    await this.#repo.backend.put(packKey(pack.id), pack.parts);
    await writeIndexFile(this.#repo, [{ packId: pack.id, entries: pack.entries }]);
    this.#index.addPack(pack.id, pack.entries);
    for (const b of blobs) this.#pending.delete(idKey(b.id));
    this.packsWritten++;
  }

  #check(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }
}

/** Writes one index file (named by the SHA-256 of its encrypted bytes); returns its id. */
export async function writeIndexFile(repo: Repository, packs: readonly IndexedPack[]): Promise<string> {
  const sealed = repo.sealObject('index', encodeIndex(packs));
  const id = createHash('sha256').update(sealed).digest('hex');
  await repo.backend.put(indexKey(id), sealed);
  return id;
}
