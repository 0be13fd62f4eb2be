/**
 * qcow2 v3 writer. Output layout (all offsets cluster aligned except compressed data):
 *
 *   cluster 0   header (112 bytes) + end-of-extensions marker
 *   1 ..        data clusters in guest order, appended as blocks arrive; compressed
 *               clusters packed byte after byte; each L2 table appended as soon as the
 *               guest moves past the range it maps (blocks come in ascending order)
 *   then        L1 table, refcount blocks, refcount table
 *
 * Memory: the L1 table (at most 32 MiB, as QEMU), one L2 table, the compression queue and
 * the refcounts of clusters holding compressed data. Everything else streams.
 *
 * Compressed mode deflates clusters as QEMU does (raw deflate, window bits 12, memory
 * level 9, block/qcow2-threads.c) on libuv's thread pool, several in flight, and emits
 * them in guest order; a cluster is stored compressed only when that makes it smaller.
 */
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { constants as zc, deflateRaw } from 'node:zlib';
import {
  InternalError,
  InvalidArgumentError,
  OutputTooLargeError,
  SinkNotSeekableError,
} from '../../../errors/index.js';
import type { BlockSink } from '../../io/block-sink.js';
import type { DiskWriter, WriterOptions } from '../../layer.js';
import { MAX_VIRTUAL_SIZE } from '../../limits.js';
import { isAllZero } from '../../pipeline/zero.js';
import {
  COMPRESSED_SECTOR,
  EXT_HEADER_BYTES,
  HDR,
  HI_COMPRESSED,
  HI_COPIED,
  L1_ENTRY_BYTES,
  L2_ENTRY_BYTES,
  MAGIC,
  MAX_CLUSTER_BITS,
  MAX_L1_BYTES,
  MAX_REFCOUNT_TABLE_BYTES,
  MIN_CLUSTER_BITS,
  SECTOR,
  V3_HEADER_LENGTH,
} from './layout.js';
import { CoalescingWriter } from '../../io/coalesce.js';
import { readPool } from '../../io/buffer-pool.js';
import { CompressedRefcounts, planRefcounts, REFCOUNT_ORDER, refcountBlock } from './refcount.js';

export const DEFAULT_CLUSTER_SIZE = 64 * 1024;
/** Smallest block handed to the writer: smaller clusters are grouped per block. */
const MIN_BLOCK_SIZE = 64 * 1024;

const deflateRawAsync = promisify(deflateRaw);
const DEFLATE_OPTIONS = { level: zc.Z_DEFAULT_COMPRESSION, windowBits: 12, memLevel: 9 } as const;

interface Pending {
  readonly guest: number;
  readonly raw: Buffer;
  readonly result: Promise<Buffer>;
}

export async function createQcow2Writer(sink: BlockSink, options: WriterOptions): Promise<DiskWriter> {
  if (!sink.seekable) {
    throw new SinkNotSeekableError(`qcow2 must be written to a seekable file, not ${sink.name}`);
  }
  if (options.subformat !== undefined && options.subformat !== 'v3') {
    throw new InvalidArgumentError(`qcow2 writes subformat "v3" only, not "${options.subformat}"`, {
      format: 'qcow2',
      subformat: options.subformat,
    });
  }
  const cs = options.clusterSize ?? DEFAULT_CLUSTER_SIZE;
  const bits = Math.log2(cs);
  if (!Number.isInteger(bits) || bits < MIN_CLUSTER_BITS || bits > MAX_CLUSTER_BITS) {
    throw new InvalidArgumentError(`qcow2 cluster size must be a power of two from 512 to 2M, not ${cs}`, {
      format: 'qcow2',
      clusterSize: cs,
    });
  }
  const v = options.virtualSize;
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new InvalidArgumentError(`invalid virtual size ${v}`, { format: 'qcow2', virtualSize: v });
  }
  if (v > MAX_VIRTUAL_SIZE) {
    throw new OutputTooLargeError(`a ${v}-byte disk exceeds the ${MAX_VIRTUAL_SIZE}-byte limit`, {
      format: 'qcow2',
      virtualSize: v,
      limit: MAX_VIRTUAL_SIZE,
    });
  }
  // QEMU addresses whole sectors: a size that is not a multiple of 512 is rounded up.
  const size = Math.ceil(v / SECTOR) * SECTOR;
  const span = cs * (cs / L2_ENTRY_BYTES);
  const l1Size = Math.ceil(size / span);
  if (l1Size * L1_ENTRY_BYTES > MAX_L1_BYTES) {
    throw new OutputTooLargeError(
      `a ${size}-byte disk needs an L1 table over 32 MiB with ${cs}-byte clusters; use a larger cluster size`,
      { format: 'qcow2', virtualSize: size, clusterSize: cs },
    );
  }
  // Worst case: every guest cluster stored, one L2 table per L1 entry.
  const worst = 1 + Math.ceil(size / cs) + l1Size + Math.ceil((l1Size * L1_ENTRY_BYTES) / cs);
  if (planRefcounts(worst, cs).tableClusters * cs > MAX_REFCOUNT_TABLE_BYTES) {
    throw new OutputTooLargeError(
      `a ${size}-byte disk may need a refcount table over 8 MiB with ${cs}-byte clusters; use a larger cluster size`,
      { format: 'qcow2', virtualSize: size, clusterSize: cs },
    );
  }
  return new Qcow2Writer(sink, size, cs, bits, l1Size, options.compress ?? false);
}

class Qcow2Writer implements DiskWriter {
  readonly blockSize: number;
  readonly releasesBlocks: boolean;
  readonly #sink: BlockSink;
  readonly #out: CoalescingWriter;
  readonly #size: number;
  readonly #cs: number;
  readonly #bits: number;
  readonly #span: number;
  readonly #l1: Buffer;
  readonly #compress: boolean;
  readonly #maxInFlight: number;
  readonly #counts = new CompressedRefcounts();
  readonly #queue: Pending[] = [];
  /** Next free byte of the file. */
  #pos: number;
  #table: Buffer | undefined;
  #tableIndex = -1;
  #finished = false;
  /** Smallest guest offset the next cluster may have. */
  #nextGuest = 0;

  constructor(sink: BlockSink, size: number, cs: number, bits: number, l1Size: number, compress: boolean) {
    this.#sink = sink;
    // Plain output gives the pipeline's buffers back once written (io/buffer-pool.ts);
    // compressed output keeps them in its queue, so it does not take part.
    this.#out = new CoalescingWriter(sink, compress ? {} : { pool: readPool });
    this.releasesBlocks = !compress;
    this.#size = size;
    this.#cs = cs;
    this.#bits = bits;
    this.#span = cs * (cs / L2_ENTRY_BYTES);
    this.#l1 = Buffer.alloc(l1Size * L1_ENTRY_BYTES);
    this.#compress = compress;
    this.#maxInFlight = Math.max(4, 2 * availableParallelism());
    this.#pos = cs;
    this.blockSize = Math.max(cs, MIN_BLOCK_SIZE);
  }

  async writeBlock(offset: number, data: Buffer): Promise<void> {
    const cs = this.#cs;
    for (let o = 0; o < data.length; o += cs) {
      let cluster = data.subarray(o, Math.min(o + cs, data.length));
      // Blocks span several small clusters: zero ones stay unallocated.
      if (data.length > cs && isAllZero(cluster)) {
        if (this.releasesBlocks) readPool.release(cluster);
        continue;
      }
      if (cluster.length < cs) {
        const whole = Buffer.alloc(cs);
        cluster.copy(whole);
        if (this.releasesBlocks) readPool.release(cluster);
        cluster = whole;
      }
      const guest = offset + o;
      if (!this.#compress) {
        await this.#emitPlain(guest, cluster);
        continue;
      }
      const result = deflateRawAsync(cluster, DEFLATE_OPTIONS);
      result.catch(() => {}); // surfaced when the queue reaches it
      this.#queue.push({ guest, raw: cluster, result });
      while (this.#queue.length >= this.#maxInFlight) await this.#emitHead();
    }
  }

  async finish(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    while (this.#queue.length > 0) await this.#emitHead();
    await this.#flushTable();
    const cs = this.#cs;
    this.#align();
    const l1Offset = this.#pos;
    const l1Clusters = Math.ceil(this.#l1.length / cs);
    if (this.#l1.length > 0) await this.#out.write(l1Offset, this.#l1);
    this.#pos += l1Clusters * cs;

    const plan = planRefcounts(this.#pos / cs, cs);
    const blocksOffset = this.#pos;
    const tableOffset = blocksOffset + plan.blocks * cs;
    const table = Buffer.alloc(plan.tableClusters * cs);
    for (let b = 0; b < plan.blocks; b++) {
      await this.#out.write(blocksOffset + b * cs, refcountBlock(b, plan.totalClusters, cs, this.#counts));
      table.writeBigUInt64BE(BigInt(blocksOffset + b * cs), b * 8);
    }
    await this.#out.write(tableOffset, table);
    await this.#out.drain();
    await this.#sink.write(0, this.#header(l1Offset, tableOffset, plan.tableClusters));
    await this.#sink.truncate(plan.totalClusters * cs);
  }

  async #emitHead(): Promise<void> {
    const p = this.#queue.shift() as Pending;
    const packed = await p.result;
    if (packed.length < this.#cs) await this.#emitCompressed(p.guest, packed);
    else await this.#emitPlain(p.guest, p.raw);
  }

  async #emitPlain(guest: number, cluster: Buffer): Promise<void> {
    await this.#enterTable(guest);
    this.#align();
    const host = this.#pos;
    this.#pos += this.#cs;
    await this.#out.write(host, cluster);
    this.#setEntry(guest, (HI_COPIED | Math.floor(host / 2 ** 32)) >>> 0, host % 2 ** 32);
  }

  async #emitCompressed(guest: number, packed: Buffer): Promise<void> {
    await this.#enterTable(guest);
    const host = this.#pos;
    // Descriptor: x = 62 - (cluster_bits - 8) bits of offset, then the number of
    // 512-byte sectors after the first one the data touches.
    const x = 62 - (this.#bits - 8);
    if (host >= 2 ** x) {
      throw new OutputTooLargeError(`qcow2 compressed data past 2^${x} bytes cannot be addressed`, {
        format: 'qcow2',
        offset: host,
      });
    }
    const firstSector = Math.floor(host / COMPRESSED_SECTOR);
    const extraSectors = Math.floor((host + packed.length - 1) / COMPRESSED_SECTOR) - firstSector;
    this.#pos += packed.length;
    await this.#out.write(host, packed);
    const sectorEnd = (firstSector + extraSectors + 1) * COMPRESSED_SECTOR;
    this.#counts.add(Math.floor(host / this.#cs), Math.floor((sectorEnd - 1) / this.#cs));
    const hi = (HI_COMPRESSED | (extraSectors << (x - 32)) | Math.floor(host / 2 ** 32)) >>> 0;
    this.#setEntry(guest, hi, host % 2 ** 32);
  }

  /** Makes the L2 table of `guest` current, appending the previous one to the file. */
  async #enterTable(guest: number): Promise<void> {
    // The DiskWriter contract: blocks come once each, in ascending order. A table once
    // written is final, so anything else would silently lose data.
    if (guest < this.#nextGuest || guest >= this.#size) {
      throw new InternalError(
        `qcow2 writer got cluster ${guest} after ${this.#nextGuest} (size ${this.#size})`,
      );
    }
    this.#nextGuest = guest + this.#cs;
    const index = Math.floor(guest / this.#span);
    if (index === this.#tableIndex) return;
    await this.#flushTable();
    this.#table = Buffer.alloc(this.#cs);
    this.#tableIndex = index;
  }

  async #flushTable(): Promise<void> {
    if (!this.#table) return;
    this.#align();
    const at = this.#pos;
    this.#pos += this.#cs;
    await this.#out.write(at, this.#table);
    const e = this.#tableIndex * L1_ENTRY_BYTES;
    this.#l1.writeUInt32BE((HI_COPIED | Math.floor(at / 2 ** 32)) >>> 0, e);
    this.#l1.writeUInt32BE(at % 2 ** 32, e + 4);
    this.#table = undefined;
  }

  #setEntry(guest: number, hi: number, lo: number): void {
    const e = ((guest - this.#tableIndex * this.#span) / this.#cs) * L2_ENTRY_BYTES;
    const table = this.#table as Buffer;
    table.writeUInt32BE(hi, e);
    table.writeUInt32BE(lo, e + 4);
  }

  #align(): void {
    this.#pos = Math.ceil(this.#pos / this.#cs) * this.#cs;
  }

  #header(l1Offset: number, refcountTableOffset: number, refcountTableClusters: number): Buffer {
    const h = Buffer.alloc(V3_HEADER_LENGTH + EXT_HEADER_BYTES); // the zeros after it end the extensions
    h.writeUInt32BE(MAGIC, HDR.magic);
    h.writeUInt32BE(3, HDR.version);
    h.writeUInt32BE(this.#bits, HDR.clusterBits);
    h.writeBigUInt64BE(BigInt(this.#size), HDR.size);
    h.writeUInt32BE(this.#l1.length / L1_ENTRY_BYTES, HDR.l1Size);
    h.writeBigUInt64BE(BigInt(l1Offset), HDR.l1TableOffset);
    h.writeBigUInt64BE(BigInt(refcountTableOffset), HDR.refcountTableOffset);
    h.writeUInt32BE(refcountTableClusters, HDR.refcountTableClusters);
    h.writeUInt32BE(REFCOUNT_ORDER, HDR.refcountOrder);
    h.writeUInt32BE(V3_HEADER_LENGTH, HDR.headerLength);
    return h;
  }
}
