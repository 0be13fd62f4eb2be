/**
 * VHD output.
 *
 * - `dynamic` (default, like `qemu-img convert -O vpc`): footer copy, dynamic header, BAT,
 *   then one block (all-ones sector bitmap + data) per block holding data, in disk order,
 *   then the footer. Needs a seekable sink (the BAT is written last).
 * - `fixed`: the data, then the footer. The virtual size is rounded up to a 1 MiB multiple
 *   (Azure refuses fixed VHDs that are not). Works on a pipe: gaps are written as zeros.
 *
 * Both record the size in current_size with creator application "qem2", which QEMU reads
 * as "the size is current_size" (block/vpc.c), as do Hyper-V, Azure, VirtualBox and Xen
 * (they ignore the geometry); the CHS geometry is still the spec's, for Virtual PC.
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, OutputTooLargeError } from '../../../errors/index.js';
import type { BlockSink } from '../../io/block-sink.js';
import type { DiskWriter, WriterOptions } from '../../layer.js';
import { MAX_METADATA_TABLE_BYTES } from '../../limits.js';
import { buildBat, buildDynamicHeader, buildFooter, vhdNow } from './build.js';
import { CoalescingWriter } from '../../io/coalesce.js';
import {
  BAT_UNALLOCATED,
  DEFAULT_BLOCK_SIZE,
  DYN_HEADER_SIZE,
  FIXED_ALIGNMENT,
  FOOTER_SIZE,
  MAX_BLOCK_SIZE,
  MAX_VIRTUAL_BYTES,
  SECTOR,
  bitmapBytes,
} from './layout.js';

export const VHD_SUBFORMATS = ['dynamic', 'fixed'] as const;

/** Unit of writeBlock: zero runs of this size inside a block stay holes in the file. */
const WRITE_UNIT = 64 * 1024;
/** Smallest block size written: one write unit. */
const MIN_WRITE_BLOCK_SIZE = WRITE_UNIT;

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export async function createVhdWriter(sink: BlockSink, options: WriterOptions): Promise<DiskWriter> {
  const subformat = options.subformat ?? 'dynamic';
  if (!(VHD_SUBFORMATS as readonly string[]).includes(subformat)) {
    throw new InvalidArgumentError(
      `vhd cannot write subformat ${JSON.stringify(subformat)}; writable: dynamic, fixed`,
      {
        format: 'vhd',
        subformat,
      },
    );
  }
  if (options.compress) {
    throw new InvalidArgumentError('vhd has no compression', { format: 'vhd', option: 'compress' });
  }
  const size = options.virtualSize;
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new InvalidArgumentError(`invalid virtual size ${size}`, { format: 'vhd', virtualSize: size });
  }
  const rounded = roundUp(size, subformat === 'fixed' ? FIXED_ALIGNMENT : SECTOR);
  if (rounded > MAX_VIRTUAL_BYTES) {
    throw new OutputTooLargeError(`a ${size}-byte disk exceeds VHD's 2040 GiB maximum (use vhdx)`, {
      format: 'vhd',
      virtualSize: size,
      limit: MAX_VIRTUAL_BYTES,
    });
  }
  if (subformat === 'fixed') {
    if (options.clusterSize !== undefined) {
      throw new InvalidArgumentError('a fixed VHD has no blocks: --cluster-size applies to dynamic only', {
        format: 'vhd',
        clusterSize: options.clusterSize,
      });
    }
    return new FixedVhdWriter(sink, rounded);
  }
  if (!sink.seekable) {
    throw new InvalidArgumentError('a dynamic VHD must be written to a file, not a stream', {
      format: 'vhd',
    });
  }
  const blockSize = options.clusterSize ?? DEFAULT_BLOCK_SIZE;
  const entries = Math.ceil(rounded / blockSize);
  if (
    !Number.isSafeInteger(blockSize) ||
    blockSize < MIN_WRITE_BLOCK_SIZE ||
    blockSize > MAX_BLOCK_SIZE ||
    (blockSize & (blockSize - 1)) !== 0 ||
    entries * 4 > MAX_METADATA_TABLE_BYTES
  ) {
    throw new InvalidArgumentError(
      `VHD block size must be a power of two from ${MIN_WRITE_BLOCK_SIZE} to ${MAX_BLOCK_SIZE} bytes ` +
        `with at most ${MAX_METADATA_TABLE_BYTES / 4} blocks (got ${blockSize})`,
      { format: 'vhd', clusterSize: blockSize },
    );
  }
  return new DynamicVhdWriter(sink, rounded, blockSize);
}

function outOfRange(offset: number, length: number, size: number): never {
  throw new InvalidArgumentError(`block ${offset}+${length} outside the ${size}-byte disk`, {
    format: 'vhd',
    offset,
    length,
  });
}

class FixedVhdWriter implements DiskWriter {
  readonly blockSize = WRITE_UNIT;
  readonly #sink: BlockSink;
  readonly #out: CoalescingWriter;
  readonly #size: number;

  constructor(sink: BlockSink, size: number) {
    this.#sink = sink;
    this.#size = size;
    this.#out = new CoalescingWriter(sink);
  }

  async writeBlock(offset: number, data: Buffer): Promise<void> {
    if (offset < 0 || offset + data.length > this.#size) outOfRange(offset, data.length, this.#size);
    if (!this.#sink.seekable && offset > this.#out.end) {
      await this.#out.drain();
      await this.#sink.truncate(offset); // a pipe has no holes: zeros
    }
    await this.#out.write(offset, data);
  }

  async finish(): Promise<void> {
    await this.#out.drain();
    if (this.#sink.position < this.#size) await this.#sink.truncate(this.#size);
    const footer = buildFooter({
      diskType: 'fixed',
      size: this.#size,
      uniqueId: randomBytes(16),
      timestamp: vhdNow(),
    });
    await this.#sink.write(this.#size, footer);
  }
}

class DynamicVhdWriter implements DiskWriter {
  readonly blockSize = WRITE_UNIT;
  readonly #sink: BlockSink;
  readonly #out: CoalescingWriter;
  readonly #size: number;
  readonly #vhdBlock: number;
  readonly #bitmap: Buffer;
  readonly #bat: Uint32Array;
  readonly #tableOffset = FOOTER_SIZE + DYN_HEADER_SIZE;
  #nextFree: number;

  constructor(sink: BlockSink, size: number, vhdBlock: number) {
    this.#sink = sink;
    this.#size = size;
    this.#vhdBlock = vhdBlock;
    this.#out = new CoalescingWriter(sink);
    this.#bitmap = Buffer.alloc(bitmapBytes(vhdBlock), 0xff);
    this.#bat = new Uint32Array(Math.ceil(size / vhdBlock)).fill(BAT_UNALLOCATED);
    this.#nextFree = this.#tableOffset + roundUp(this.#bat.length * 4, SECTOR);
  }

  async writeBlock(offset: number, data: Buffer): Promise<void> {
    if (offset < 0 || offset + data.length > this.#size) outOfRange(offset, data.length, this.#size);
    const bs = this.#vhdBlock;
    for (let pos = offset; pos < offset + data.length;) {
      const b = Math.floor(pos / bs);
      const stop = Math.min(offset + data.length, (b + 1) * bs);
      if (this.#bat[b] === BAT_UNALLOCATED) {
        this.#bat[b] = this.#nextFree / SECTOR;
        await this.#out.write(this.#nextFree, this.#bitmap);
        this.#nextFree += this.#bitmap.length + bs;
      }
      const at = (this.#bat[b] as number) * SECTOR + this.#bitmap.length + (pos - b * bs);
      await this.#out.write(
        at,
        pos === offset && stop === offset + data.length ? data : data.subarray(pos - offset, stop - offset),
      );
      pos = stop;
    }
  }

  async finish(): Promise<void> {
    await this.#out.drain();
    const footer = buildFooter({
      diskType: 'dynamic',
      size: this.#size,
      dataOffset: FOOTER_SIZE,
      uniqueId: randomBytes(16),
      timestamp: vhdNow(),
    });
    const header = buildDynamicHeader({
      tableOffset: this.#tableOffset,
      maxTableEntries: this.#bat.length,
      blockSize: this.#vhdBlock,
    });
    // The last block's unwritten tail stays a hole: the footer goes after the whole block.
    await this.#sink.write(this.#nextFree, footer);
    await this.#sink.write(this.#tableOffset, buildBat(this.#bat));
    await this.#sink.write(FOOTER_SIZE, header);
    await this.#sink.write(0, footer);
  }
}
