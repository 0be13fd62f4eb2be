/**
 * raw: the disk's bytes, nothing else. Every file is a valid raw image, so raw is probed
 * last and only when no other format's signature matches.
 *
 * The virtual size is the file size rounded up to 512 bytes, with the tail reading as
 * zeros: QEMU does the same (block devices are addressed in sectors), so checksums and
 * conversions of odd-sized raw files agree with qemu-img.
 *
 * Holes of sparse raw files are not visible through the ByteSource seam (Node has no
 * SEEK_DATA/SEEK_HOLE); the pipeline detects zero blocks by content instead.
 */
import { MAX_VIRTUAL_SIZE } from '../../limits.js';
import { ImageTooLargeError } from '../../../errors/index.js';
import type { ByteSource } from '../../io/byte-source.js';
import type { BlockSink } from '../../io/block-sink.js';
import { CoalescingWriter } from '../../io/coalesce.js';
import { readPool } from '../../io/buffer-pool.js';
import type { LayerExtent } from '../../extent.js';
import type { DiskLayer, DiskWriter, FormatDriver, LayerInfo, WriterOptions } from '../../layer.js';

const SECTOR = 512;

class RawLayer implements DiskLayer {
  readonly info: LayerInfo;
  readonly #src: ByteSource;

  constructor(src: ByteSource) {
    this.#src = src;
    this.info = Object.freeze({
      format: 'raw',
      subformat: 'raw',
      virtualSize: Math.ceil(src.size / SECTOR) * SECTOR,
      clusterSize: 512,
      fileSize: src.size,
      files: [],
      warnings: [],
      details: {},
    });
  }

  async map(offset: number, length: number): Promise<LayerExtent[]> {
    const size = this.#src.size;
    const out: LayerExtent[] = [];
    const inFile = Math.max(0, Math.min(length, size - offset));
    if (inFile > 0) out.push({ offset, length: inFile, kind: 'data', fileOffset: offset });
    if (inFile < length) out.push({ offset: offset + inFile, length: length - inFile, kind: 'zero' });
    return out;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const size = this.#src.size;
    if (offset + length <= size) return this.#src.read(offset, length);
    // The sector-rounding tail past the end of the file reads as zeros.
    const out = Buffer.alloc(length);
    if (offset < size) (await this.#src.read(offset, size - offset)).copy(out);
    return out;
  }

  async readInto(offset: number, target: Buffer): Promise<void> {
    const size = this.#src.size;
    const inFile = Math.max(0, Math.min(target.length, size - offset));
    if (inFile === target.length && this.#src.readInto) return this.#src.readInto(offset, target);
    if (inFile > 0) (await this.#src.read(offset, inFile)).copy(target);
    target.fill(0, inFile);
  }

  close(): Promise<void> {
    return this.#src.close();
  }
}

/** Raw output: data blocks at their offsets, holes (or zeros on a pipe) elsewhere. */
class RawWriter implements DiskWriter {
  readonly blockSize = 64 * 1024;
  readonly releasesBlocks = true;
  readonly #sink: BlockSink;
  readonly #out: CoalescingWriter;
  readonly #size: number;

  constructor(sink: BlockSink, size: number) {
    this.#sink = sink;
    this.#size = size;
    this.#out = new CoalescingWriter(sink, { pool: readPool });
  }

  async writeBlock(offset: number, data: Buffer): Promise<void> {
    if (!this.#sink.seekable && offset > this.#out.end) {
      await this.#out.drain();
      await this.#sink.truncate(offset); // a pipe has no holes: fill with zeros
    }
    await this.#out.write(offset, data);
  }

  async finish(): Promise<void> {
    await this.#out.drain();
    await this.#sink.truncate(this.#size);
  }
}

export const rawDriver: FormatDriver = {
  name: 'raw',
  writableSubformats: ['raw'],
  async probe(): Promise<boolean> {
    return true;
  },
  async open(src: ByteSource): Promise<DiskLayer> {
    if (src.size > MAX_VIRTUAL_SIZE) {
      throw new ImageTooLargeError(`${src.name}: raw image larger than ${MAX_VIRTUAL_SIZE} bytes`, {
        format: 'raw',
        size: src.size,
        limit: MAX_VIRTUAL_SIZE,
      });
    }
    return new RawLayer(src);
  },
  needsSeekableSink: () => false,
  async createWriter(sink: BlockSink, options: WriterOptions): Promise<DiskWriter> {
    return new RawWriter(sink, options.virtualSize);
  },
};
