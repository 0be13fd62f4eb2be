/**
 * Writes one disk of an image: stream it through the disk engine, hash every block in
 * parallel, store only new chunks, build the manifest tree, checkpoint committed pages.
 *
 * Batches (4 MiB reads) go through two ordered stages so that parallelism never changes
 * the outcome:
 *   decide (in batch order): look each hashed block up in the index / this write's queue;
 *            new ones are reserved and sent back to the workers to be sealed;
 *   apply  (in batch order): add the sealed blobs to packs, push references into the tree
 *            and digests into the checksum, then maybe checkpoint.
 * A page (level-1 node) is checkpointed only when every blob added before it was indexed
 * (PackSink.watermark), so a checkpoint never names a chunk that is not stored.
 */
import type { Disk } from '../../disk/index.js';
import type { SealedBlob } from '../chunk/blob.js';
import { BLOB_TREE, sealBlob } from '../chunk/blob.js';
import type { BatchSlot } from '../chunk/pool.js';
import type { HashResult } from '../chunk/work.js';
import { treeIdOf } from '../crypto/keys.js';
import { idKey } from '../index/chunk-index.js';
import { ID_BYTES } from '../layout.js';
import { TreeChecksum } from '../manifest/checksum.js';
import type { DiskStats } from '../manifest/record.js';
import { isZeroRef, TreeBuilder, treeShape, ZERO_REF, type TreeShape } from '../manifest/tree.js';
import type { TreeReader } from '../read/tree-reader.js';
import { zeroDigest } from '../chunk/work.js';
import { StoreCorruptError } from '../../errors/index.js';
import { feedFull, feedIncremental } from './base-plan.js';
import type { WriteContext } from './context.js';
import { OffsetDisk } from './offset-disk.js';
import { BufferOwner } from '../pack/packer.js';
import { writeCheckpoint, type DiskProgress } from './staging.js';

/** Largest single read from the source disk (several run at once per batch slot). */
const READ_BYTES = 1024 * 1024;

/** Readers of the base image's trees, for blocks the plan says are unchanged (base-plan.ts). */
export interface BaseReaders {
  /** Depth of the base image's layer in the disk's chain. */
  readonly depth: number;
  readonly tree: TreeReader;
  readonly digests: TreeReader;
}

export interface DiskResult {
  readonly root: string;
  readonly checksum: string;
  readonly digests?: string;
  readonly stats: DiskStats;
}

interface PageState {
  ref?: Buffer;
  digest?: Buffer;
  seq?: number;
  stats?: DiskStats;
}

interface Batch {
  decide(): Promise<void>;
  apply(): Promise<void>;
}

export class DiskRun {
  readonly #ctx: WriteContext;
  readonly #disk: Disk;
  readonly #index: number;
  readonly #resume: DiskProgress;
  readonly shape: TreeShape;
  readonly tree: TreeBuilder;
  /** Digests of every block (see DiskImage.digests); not kept when resuming mid-disk. */
  readonly digestTree: TreeBuilder | undefined;
  readonly #base: BaseReaders | undefined;
  readonly sum: TreeChecksum;
  readonly stats: { -readonly [K in keyof DiskStats]: number };
  readonly #pages = new Map<number, PageState>();
  #nextPage: number;
  #cpSeq: number;
  #lastCp = 0;
  #cpChain: Promise<void> = Promise.resolve();
  #cpFailure: unknown;

  constructor(ctx: WriteContext, disk: Disk, index: number, resume: DiskProgress, base?: BaseReaders) {
    this.#ctx = ctx;
    this.#disk = disk;
    this.#index = index;
    this.#resume = resume;
    const { blockSize, fanout } = ctx.repo.config;
    this.shape = treeShape(disk.virtualSize, blockSize, fanout);
    this.stats = { ...resume.stats };
    this.tree = new TreeBuilder(
      this.shape,
      (level, content) => this.#storeNode(content),
      (level, i, ref) => {
        if (level === 1) Object.assign(this.#page(i), { ref, seq: ctx.sink.seq, stats: { ...this.stats } });
      },
    );
    this.digestTree =
      resume.pages.length === 0
        ? new TreeBuilder(this.shape, (_level, content) => this.#storeNode(content))
        : undefined;
    this.#base = base;
    this.sum = new TreeChecksum(this.shape, (i, digest) => {
      this.#page(i).digest = digest;
    });
    this.tree.seedPages(resume.pages);
    this.sum.seedPages(resume.digests);
    this.#nextPage = resume.pages.length;
    this.#cpSeq = resume.nextSeq;
  }

  async run(): Promise<DiskResult> {
    const { blockSize: bs } = this.shape;
    const start = Math.min(this.shape.blocks, this.#resume.pages.length * this.shape.fanout) * bs;
    this.#ctx.progress(start, 0);
    if (start < this.shape.virtualSize) {
      const feed = this.#feeder();
      if (this.#base && start === 0) {
        await feedIncremental(this.#disk, bs, this.#base.depth, feed, this.#ctx.signal);
      } else {
        await feed.disk(start > 0 ? new OffsetDisk(this.#disk, start) : this.#disk);
      }
      await feed.end();
    }
    const root = this.tree.finish().toString('hex');
    const digests = this.digestTree?.finish().toString('hex');
    const checksum = this.sum.digest();
    await this.#ctx.sink.flush();
    this.maybeCheckpoint({ root, checksum, ...(digests ? { digests } : {}) });
    await this.#cpChain;
    this.#checkCp();
    return { root, checksum, ...(digests ? { digests } : {}), stats: { ...this.stats } };
  }

  /**
   * The batch pipeline: data read from a disk (or a range of it), zero runs and reused
   * base runs, dispatched in order through the decide/apply stages.
   */
  #feeder() {
    const { blockSize: bs } = this.shape;
    let decided: Promise<void> = Promise.resolve();
    let applied: Promise<void> = Promise.resolve();
    const inflight: Promise<void>[] = [];
    const dispatch = async (item: Batch) => {
      const d: Promise<void> = decided.then(() => item.decide());
      const a: Promise<void> = Promise.all([applied, d]).then(() => item.apply());
      d.catch(() => {});
      a.catch(() => {});
      decided = d;
      applied = a;
      inflight.push(a);
      while (inflight.length >= this.#ctx.maxInflight) await inflight.shift();
      await this.#ctx.sink.backpressure();
      this.#checkCp();
    };
    // Reads land straight in the batch slot (no read buffer, no copy on this thread); the
    // batch is dispatched at once and hashes when its reads are done, so the next slot's
    // reads overlap the workers.
    const readBytes = Math.max(bs, Math.floor(READ_BYTES / bs) * bs);
    let slot: BatchSlot | undefined;
    let used = 0;
    let reads: Promise<unknown>[] = [];
    const flush = async () => {
      // allSettled: a slot goes back to the pool (on failure too) only once no read of it runs.
      const ready = Promise.allSettled(reads).then((rs) => {
        for (const r of rs) if (r.status === 'rejected') throw r.reason;
      });
      if (slot && used > 0) await dispatch(this.#dataBatch(slot, used, ready));
      slot = undefined;
      used = 0;
      reads = [];
    };
    const zeros = async (blocks: number, bytes: number) => {
      await flush();
      await dispatch(this.#zeroBatch(blocks, bytes));
    };
    const size = this.#ctx.buffers.size;
    return {
      zeros,
      /** Bytes of whole blocks (the last may be short), at most one slot's worth. */
      bytes: async (data: Buffer) => {
        if (slot && used + data.length > size) await flush();
        slot ??= await this.#ctx.buffers.acquire();
        slot.input.set(data, used);
        used += data.length;
        if (used + readBytes > size) await flush();
      },
      disk: async (view: Disk) => {
        const read = async (offset: number, length: number) => {
          for (let at = offset; at < offset + length;) {
            slot ??= await this.#ctx.buffers.acquire();
            const n = Math.min(offset + length - at, size - used, readBytes);
            const target = slot.input.subarray(used, used + n);
            const p = view.readInto ? view.readInto(at, target) : view.read(at, n).then((b) => target.set(b));
            p.catch(() => {}); // surfaced by the batch (its hash waits for its reads)
            reads.push(p);
            used += n;
            at += n;
            if (used === size) await flush();
          }
        };
        await feedFull(view, bs, { zeros, read }, this.#ctx.signal);
      },
      base: async (first: number, count: number) => {
        await flush();
        // One page of references at a time: bounded memory whatever the run's length.
        const per = this.shape.fanout;
        for (let b = first; b < first + count; b += per) {
          const n = Math.min(per, first + count - b);
          const to = Math.min(this.shape.virtualSize, (b + n) * bs);
          await dispatch(this.#baseBatch(b, n, to - b * bs));
        }
      },
      end: async () => {
        await flush();
        for (const p of inflight) await p;
      },
    };
  }

  /** Writes a checkpoint of the pages that became safe, when due (or always when `done`). */
  maybeCheckpoint(done?: { root: string; checksum: string; digests?: string }): void {
    const wm = this.#ctx.sink.watermark();
    const ready: PageState[] = [];
    for (let p = this.#nextPage; ; p++) {
      const s = this.#pages.get(p);
      if (!s?.ref || !s.digest || s.seq === undefined || s.seq > wm) break;
      ready.push(s);
    }
    if (!done && (ready.length === 0 || Date.now() - this.#lastCp < this.#ctx.checkpointMs)) return;
    const firstPage = this.#nextPage;
    for (let p = firstPage; p < firstPage + ready.length; p++) this.#pages.delete(p);
    this.#nextPage += ready.length;
    this.#lastCp = Date.now();
    const cp = {
      disk: this.#index,
      seq: this.#cpSeq++,
      firstPage,
      pages: Buffer.concat(ready.map((s) => s.ref as Buffer)),
      digests: Buffer.concat(ready.map((s) => s.digest as Buffer)),
      stats: done ? { ...this.stats } : (ready[ready.length - 1]?.stats ?? { ...this.stats }),
      ...(done ? { done } : {}),
    };
    this.#cpChain = this.#cpChain.then(async () => {
      this.#ctx.lock.assertFresh();
      await writeCheckpoint(this.#ctx.repo, this.#ctx.imageId, cp);
    });
    this.#cpChain.catch((err: unknown) => {
      this.#cpFailure ??= err;
    });
  }

  #checkCp(): void {
    if (this.#cpFailure !== undefined) throw this.#cpFailure;
  }

  #page(i: number): PageState {
    let s = this.#pages.get(i);
    if (!s) this.#pages.set(i, (s = {}));
    return s;
  }

  #storeNode(content: Buffer): Buffer {
    const id = treeIdOf(this.#ctx.repo.keys.idKey, content);
    const key = idKey(id);
    if (!this.#ctx.sink.hasKey(key) && !this.#ctx.reserved.has(key)) {
      const blob = sealBlob(this.#ctx.repo.keys.encKey, BLOB_TREE, id, content);
      this.#ctx.sink.add(blob);
      this.stats.storedBytes += blob.length;
    }
    return id;
  }

  #zeroBatch(blocks: number, length: number): Batch {
    return {
      decide: async () => {},
      apply: async () => {
        this.tree.pushZeroBlocks(blocks);
        this.digestTree?.pushZeroBlocks(blocks);
        this.sum.pushZeroBlocks(blocks);
        this.stats.zeroBlocks += blocks;
        this.#ctx.progress(length, 0);
        this.maybeCheckpoint();
      },
    };
  }

  /** A batch of `length` bytes in `slot`, there once `ready` resolves (its reads). */
  #dataBatch(slot: BatchSlot, length: number, ready: Promise<unknown> = Promise.resolve()): Batch {
    const ctx = this.#ctx;
    const bs = this.shape.blockSize;
    // The slot holds the blocks until sealed and the sealed blobs until added to a pack.
    let released = false;
    const release = () => {
      if (!released) ctx.buffers.release(slot);
      released = true;
    };
    const hashed = ready.then(() => ctx.codec.hash(slot, length, bs));
    hashed.catch(release);
    let r: HashResult;
    const picks: number[] = [];
    let sealed: Promise<SealedBlob[]> = Promise.resolve([]);
    return {
      decide: async () => {
        r = await hashed;
        for (let i = 0; i < r.zero.length; i++) {
          if (r.zero[i]) continue;
          const key = idKey(r.ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES));
          if (ctx.sink.hasKey(key) || ctx.reserved.has(key)) continue;
          ctx.reserved.add(key);
          picks.push(i);
        }
        if (picks.length > 0) {
          sealed = ctx.codec.seal(slot, length, bs, picks, r.ids);
          sealed.catch(release);
        }
      },
      apply: async () => {
        let owner: BufferOwner | undefined;
        try {
          let blobs = await sealed;
          const output = slot.output;
          const sealedBytes = blobs.reduce((n, b) => n + b.length, 0);
          if (sealedBytes * 2 < output.length) {
            // A mostly empty output (few new blocks) is copied out, not handed to the pack:
            // packs then hold what they store, not a 4 MiB output per few blobs (the 1 %
            // rewrite case held ~150 outputs per 16 MiB pack, each a fresh allocation).
            const own = Buffer.allocUnsafeSlow(sealedBytes);
            own.set(output.subarray(0, sealedBytes));
            blobs = blobs.map((b) => ({
              ...b,
              bytes: own.subarray(b.bytes.byteOffset, b.bytes.byteOffset + b.length),
            }));
          } else {
            owner = new BufferOwner(() => ctx.buffers.recycleOutput(output));
          }
          const byBlock = new Map(picks.map((b, j) => [b, blobs[j] as SealedBlob]));
          for (let i = 0; i < r.zero.length; i++) {
            const digest = r.digests.subarray(i * ID_BYTES, (i + 1) * ID_BYTES);
            if (r.zero[i]) {
              this.tree.pushBlockRef(ZERO_REF);
              this.digestTree?.pushBlockRef(ZERO_REF);
              this.stats.zeroBlocks++;
            } else {
              const id = r.ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES);
              const blob = byBlock.get(i);
              if (blob) {
                ctx.sink.add(blob, owner); // the pack keeps the slot's output alive
                ctx.reserved.delete(idKey(id));
                this.stats.newChunks++;
                this.stats.newBytes += blob.rawLength;
                this.stats.storedBytes += blob.length;
              }
              this.tree.pushBlockRef(id);
              this.digestTree?.pushBlockRef(digest);
              this.stats.dataBlocks++;
            }
            this.sum.pushDigest(digest);
          }
        } finally {
          // If packs hold blobs of this output, it is theirs now (recycled once they are
          // stored) and the slot gets another; otherwise the slot simply keeps it.
          if (owner && owner.refs > 0) {
            slot.output = ctx.buffers.newOutput();
            owner.done();
          }
          release();
        }
        ctx.progress(length, length);
        this.maybeCheckpoint();
      },
    };
  }

  /** Blocks unchanged since the base image: its references and digests, no read. */
  #baseBatch(first: number, count: number, length: number): Batch {
    const base = this.#base as BaseReaders;
    let refs: Buffer;
    let digests: Buffer;
    return {
      decide: async () => {
        [refs, digests] = await Promise.all([
          base.tree.blockRefs(first, count),
          base.digests.blockRefs(first, count),
        ]);
      },
      apply: async () => {
        for (let i = 0; i < count; i++) {
          const ref = refs.subarray(i * ID_BYTES, (i + 1) * ID_BYTES);
          if (isZeroRef(ref)) {
            this.tree.pushBlockRef(ZERO_REF);
            this.digestTree?.pushBlockRef(ZERO_REF);
            this.sum.pushDigest(zeroDigest(this.#blockBytes(first + i)));
            this.stats.zeroBlocks++;
            continue;
          }
          const digest = digests.subarray(i * ID_BYTES, (i + 1) * ID_BYTES);
          if (isZeroRef(digest)) {
            throw new StoreCorruptError(`base image: block ${first + i} has data but no digest`, {
              block: first + i,
            });
          }
          this.tree.pushBlockRef(ref);
          this.digestTree?.pushBlockRef(digest);
          this.sum.pushDigest(digest);
          this.stats.dataBlocks++;
        }
        this.#ctx.progress(length, 0);
        this.maybeCheckpoint();
      },
    };
  }

  #blockBytes(i: number): number {
    return i === this.shape.blocks - 1 ? this.shape.lastBlockBytes : this.shape.blockSize;
  }
}
