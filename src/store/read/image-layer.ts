/**
 * One disk of a server image as a disk-engine DiskLayer: read-only, random access. `map`
 * says `data` or `zero` from the manifest tree (never `unallocated`: an image has no
 * parent), `read` fetches and authenticates chunks. Wrapped in a LayeredDisk it is a Disk
 * that `copyDisk` exports to any format the disk engine writes.
 *
 * With `verify`, reads must come in ascending order (as copyDisk does); the layer then
 * recomputes the `sha256-tree` checksum of what it returned (gaps count as zeros) and
 * {@link ImageLayer.verify} compares it with the checksum recorded at write time.
 */
import type { DiskLayer, LayerExtent, LayerInfo } from '../../disk/index.js';
import { InternalError, StoreChecksumMismatchError } from '../../errors/index.js';
import { BLOB_DATA } from '../chunk/blob.js';
import { idKey } from '../index/chunk-index.js';
import { ID_BYTES } from '../layout.js';
import { TreeChecksum } from '../manifest/checksum.js';
import type { DiskImage } from '../manifest/record.js';
import { isZeroRef, treeShape, type TreeShape } from '../manifest/tree.js';
import type { ChunkFetcher } from './fetch.js';
import { TreeReader } from './tree-reader.js';

/** Decoded blocks kept for small, unaligned reads (a VM reading 4 KiB at a time): 8 MiB. */
const BLOCK_CACHE_BYTES = 8 * 1024 * 1024;

interface Verifier {
  readonly sum: TreeChecksum;
  cursor: number;
  chain: Promise<void>;
  broken: boolean;
}

export class ImageLayer implements DiskLayer {
  readonly info: LayerInfo;
  readonly shape: TreeShape;
  readonly #disk: DiskImage;
  readonly #tree: TreeReader;
  readonly #fetcher: ChunkFetcher;
  readonly #cache = new Map<string, Buffer>();
  #cacheBytes = 0;
  readonly #verifier: Verifier | undefined;
  readonly #onClose: () => Promise<void>;

  constructor(
    imageId: string,
    disk: DiskImage,
    fetcher: ChunkFetcher,
    options: { verify?: boolean; onClose?: () => Promise<void> } = {},
  ) {
    this.#disk = disk;
    this.#fetcher = fetcher;
    this.shape = treeShape(disk.virtualSize, disk.blockSize, disk.fanout);
    this.#tree = new TreeReader(this.shape, Buffer.from(disk.root, 'hex'), fetcher);
    this.#onClose = options.onClose ?? (async () => {});
    this.#verifier = options.verify
      ? { sum: new TreeChecksum(this.shape), cursor: 0, chain: Promise.resolve(), broken: false }
      : undefined;
    this.info = Object.freeze({
      format: 'raw',
      subformat: 'ferry-image',
      virtualSize: disk.virtualSize,
      clusterSize: disk.blockSize,
      fileSize: disk.stats.storedBytes,
      files: [],
      warnings: [],
      details: Object.freeze({ image: imageId, disk: disk.index, name: disk.name, checksum: disk.checksum }),
    });
  }

  get tree(): TreeReader {
    return this.#tree;
  }

  async map(offset: number, length: number): Promise<LayerExtent[]> {
    const bs = this.shape.blockSize;
    const first = Math.floor(offset / bs);
    const end = offset + length;
    const out: LayerExtent[] = [];
    for (const run of await this.#tree.blockRuns(first, Math.ceil(end / bs) - first)) {
      const s = Math.max(offset, run.start * bs);
      const e = Math.min(end, (run.start + run.count) * bs);
      if (e > s) out.push({ offset: s, length: e - s, kind: run.zero ? 'zero' : 'data' });
    }
    return out;
  }

  read(offset: number, length: number): Promise<Buffer> {
    const data = this.#read(offset, length);
    const v = this.#verifier;
    if (!v) return data;
    if (offset < v.cursor) {
      v.broken = true;
      return data;
    }
    const gap = offset - v.cursor;
    v.cursor = offset + length;
    // Hash in call order, before the caller sees the bytes (a writer may reuse them).
    const hashed = Promise.all([data, v.chain]).then(([d]) => {
      v.sum.zeros(gap);
      v.sum.update(d);
      return d;
    });
    v.chain = hashed.then(
      () => {},
      () => {},
    );
    return hashed;
  }

  /** After a sequential read of the whole disk: FERRY_STORE_CHECKSUM_MISMATCH unless equal. */
  async verify(): Promise<string> {
    const v = this.#verifier;
    if (!v) throw new InternalError('this image view was not opened with verify');
    if (v.broken) throw new InternalError('reads were not sequential; the checksum cannot be verified');
    await v.chain;
    v.sum.zeros(this.shape.virtualSize - v.cursor);
    const actual = v.sum.digest();
    if (actual !== this.#disk.checksum) {
      throw new StoreChecksumMismatchError(
        `disk ${this.#disk.index} (${this.#disk.name}): content checksum ${actual} differs from the ` +
          `recorded ${this.#disk.checksum}`,
        { disk: this.#disk.index, expected: this.#disk.checksum, actual },
      );
    }
    return actual;
  }

  async #read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    if (length === 0) return out;
    const bs = this.shape.blockSize;
    const first = Math.floor(offset / bs);
    const count = Math.ceil((offset + length) / bs) - first;
    const refs = await this.#tree.blockRefs(first, count);
    const want = new Map<string, Buffer>();
    for (let i = 0; i < count; i++) {
      const ref = refs.subarray(i * ID_BYTES, (i + 1) * ID_BYTES);
      if (!isZeroRef(ref) && !this.#cache.has(idKey(ref))) want.set(idKey(ref), ref);
    }
    const fetched = want.size > 0 ? await this.#fetcher.fetchMany([...want.values()], BLOB_DATA) : new Map();
    for (let i = 0; i < count; i++) {
      const ref = refs.subarray(i * ID_BYTES, (i + 1) * ID_BYTES);
      if (isZeroRef(ref)) continue;
      const key = idKey(ref);
      const block = (fetched.get(key) ?? this.#cache.get(key)) as Buffer;
      const blockStart = (first + i) * bs;
      const expected = Math.min(bs, this.shape.virtualSize - blockStart);
      if (block.length !== expected) {
        throw new InternalError(`block ${first + i} decoded to ${block.length} bytes, expected ${expected}`);
      }
      const s = Math.max(offset, blockStart);
      const e = Math.min(offset + length, blockStart + block.length);
      block.copy(out, s - offset, s - blockStart, e - blockStart);
      // Keep blocks only partly used by this read: the next small read likely wants them.
      if (s > blockStart || e < blockStart + block.length) this.#remember(key, block);
    }
    return out;
  }

  #remember(key: string, block: Buffer): void {
    if (this.#cache.has(key)) return;
    this.#cache.set(key, block);
    this.#cacheBytes += block.length;
    for (const [k, v] of this.#cache) {
      if (this.#cacheBytes <= BLOCK_CACHE_BYTES) break;
      this.#cache.delete(k);
      this.#cacheBytes -= v.length;
    }
  }

  close(): Promise<void> {
    return this.#onClose();
  }
}
