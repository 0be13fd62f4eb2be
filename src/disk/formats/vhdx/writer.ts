/**
 * VHDX output (dynamic or fixed), through a seekable BlockSink.
 *
 * ```
 *  0      64K  128K  192K  256K       1 MiB        2 MiB         3 MiB            dataStart
 *  | id  | h1 | h2 | rt1 | rt2 | …    | log (1 MiB, | metadata     | BAT (rounded   | payload blocks …
 *                                     |  empty)     | (1 MiB)      |  to 1 MiB)     |
 * ```
 * Dynamic: a block is allocated at the end of the file when its first non-zero data
 * arrives (blocks arrive in ascending order, so the file is written front to back), and is
 * FULLY_PRESENT; the parts never written are holes and read as zeros. Untouched blocks stay
 * NOT_PRESENT (the spec's default; QEMU writes ZERO by default, "non-standard" in its own
 * words). Fixed: block i at dataStart + i × blockSize, all FULLY_PRESENT, LeaveBlockAllocated.
 * Logical sector 512 (QEMU's only size), LogGuid zero (nothing to replay). The metadata,
 * BAT, region tables and headers are written last, once the BAT is known.
 */
import { randomUUID } from 'node:crypto';
import {
  InternalError,
  InvalidArgumentError,
  OutputTooLargeError,
  SinkNotSeekableError,
} from '../../../errors/index.js';
import type { BlockSink } from '../../io/block-sink.js';
import { CoalescingWriter } from '../../io/coalesce.js';
import type { DiskWriter, WriterOptions } from '../../layer.js';
import { MAX_METADATA_TABLE_BYTES } from '../../limits.js';
import { geometry, payloadIndex, type Geometry } from './bat.js';
import {
  buildFileIdentifier,
  buildHeader,
  buildMetadataRegion,
  buildRegionTable,
  setBatEntry,
  standardMetadataItems,
} from './build.js';
import {
  BAT_ENTRY_SIZE,
  FORMAT,
  GUID_BAT_REGION,
  GUID_METADATA_REGION,
  HEADER_OFFSETS,
  MAX_BLOCK_SIZE,
  MAX_VHDX_VIRTUAL_SIZE,
  MIN_BLOCK_SIZE,
  MiB,
  PAYLOAD_FULLY_PRESENT,
  REGION_TABLE_OFFSETS,
} from './layout.js';

export const WRITABLE_SUBFORMATS = ['dynamic', 'fixed'] as const;
/** Hyper-V's default block size, and QEMU's for disks of 100 GiB to 32 TiB. */
export const DEFAULT_BLOCK_SIZE = 32 * MiB;
const LOG_OFFSET = 1 * MiB;
const LOG_LENGTH = 1 * MiB;
const METADATA_OFFSET = 2 * MiB;
const METADATA_LENGTH = 1 * MiB;
const BAT_OFFSET = 3 * MiB;
/** Unit the pipeline hands over: 1 MiB divides every block size, zero runs are skipped at that grain. */
const WRITE_UNIT = 1 * MiB;

export interface VhdxWriterSettings {
  readonly virtualSize: number;
  readonly subformat: (typeof WRITABLE_SUBFORMATS)[number];
  readonly blockSize: number;
  /** 512 for everything Ferry writes; tests also write 4096-byte sector disks. */
  readonly logicalSectorSize: 512 | 4096;
}

/** Checks the generic writer options and turns them into VHDX settings. */
export function writerSettings(options: WriterOptions): VhdxWriterSettings {
  const subformat = options.subformat ?? 'dynamic';
  if (!(WRITABLE_SUBFORMATS as readonly string[]).includes(subformat)) {
    throw new InvalidArgumentError(`vhdx: cannot write subformat ${JSON.stringify(subformat)}`, {
      format: FORMAT,
      subformat,
    });
  }
  if (options.compress) {
    throw new InvalidArgumentError('vhdx has no compression; drop --compress', { format: FORMAT });
  }
  const blockSize = options.clusterSize ?? DEFAULT_BLOCK_SIZE;
  if (
    !Number.isSafeInteger(blockSize) ||
    blockSize < MIN_BLOCK_SIZE ||
    blockSize > MAX_BLOCK_SIZE ||
    (blockSize & (blockSize - 1)) !== 0
  ) {
    throw new InvalidArgumentError(
      `vhdx: block size ${blockSize} is not a power of two from 1 MiB to 256 MiB`,
      {
        format: FORMAT,
        clusterSize: blockSize,
      },
    );
  }
  return {
    virtualSize: options.virtualSize,
    subformat: subformat as VhdxWriterSettings['subformat'],
    blockSize,
    logicalSectorSize: 512,
  };
}

export async function createVhdxWriter(sink: BlockSink, settings: VhdxWriterSettings): Promise<DiskWriter> {
  if (!sink.seekable) {
    throw new SinkNotSeekableError('vhdx output must be a seekable file, not a pipe', { format: FORMAT });
  }
  return new VhdxWriter(sink, settings);
}

class VhdxWriter implements DiskWriter {
  readonly blockSize = WRITE_UNIT;
  readonly #sink: BlockSink;
  readonly #out: CoalescingWriter;
  readonly #s: VhdxWriterSettings;
  readonly #g: Geometry;
  readonly #bat: Buffer;
  readonly #batLength: number;
  readonly #dataStart: number;
  /** Dynamic: where the next block goes. */
  #next: number;
  /** Last block allocated, and its file offset (blocks arrive in ascending order). */
  #block = -1;
  #blockOffset = 0;
  #end = 0;

  constructor(sink: BlockSink, s: VhdxWriterSettings) {
    const size = Math.ceil(s.virtualSize / s.logicalSectorSize) * s.logicalSectorSize;
    if (!Number.isSafeInteger(size) || size < 0 || size > MAX_VHDX_VIRTUAL_SIZE) {
      throw new OutputTooLargeError(`vhdx holds at most 64 TiB; the disk is ${s.virtualSize} bytes`, {
        format: FORMAT,
        virtualSize: s.virtualSize,
        limit: MAX_VHDX_VIRTUAL_SIZE,
      });
    }
    this.#g = geometry({
      virtualSize: size,
      blockSize: s.blockSize,
      logicalSectorSize: s.logicalSectorSize,
      hasParent: false,
    });
    const batBytes = this.#g.totalEntries * BAT_ENTRY_SIZE;
    if (batBytes > MAX_METADATA_TABLE_BYTES) {
      // Readers (Ferry's, and QEMU's in RAM) load the BAT whole: keep it loadable.
      throw new OutputTooLargeError(
        `vhdx: a ${size}-byte disk needs a ${batBytes}-byte BAT with ${s.blockSize}-byte blocks; use a larger cluster size`,
        { format: FORMAT, virtualSize: size, clusterSize: s.blockSize, limit: MAX_METADATA_TABLE_BYTES },
      );
    }
    this.#sink = sink;
    this.#out = new CoalescingWriter(sink);
    this.#s = s;
    this.#bat = Buffer.alloc(batBytes);
    this.#batLength = Math.max(MiB, Math.ceil(batBytes / MiB) * MiB);
    this.#dataStart = BAT_OFFSET + this.#batLength;
    this.#next = this.#dataStart;
    if (s.subformat === 'fixed') {
      for (let b = 0; b < this.#g.dataBlocks; b++) {
        setBatEntry(
          this.#bat,
          payloadIndex(this.#g, b),
          PAYLOAD_FULLY_PRESENT,
          this.#dataStart + b * s.blockSize,
        );
      }
    }
  }

  async writeBlock(offset: number, data: Buffer): Promise<void> {
    if (offset < this.#end || offset + data.length > this.#g.virtualSize) {
      throw new InternalError(`vhdx writer: block at ${offset} out of order or past the disk`);
    }
    const bs = this.#s.blockSize;
    for (let pos = 0; pos < data.length;) {
      const at = offset + pos;
      const block = Math.floor(at / bs);
      const n = Math.min(data.length - pos, (block + 1) * bs - at);
      await this.#out.write(this.#place(block) + at - block * bs, data.subarray(pos, pos + n));
      pos += n;
    }
    this.#end = offset + data.length;
  }

  /** File offset of payload block `block`, allocating it (dynamic) on first use. */
  #place(block: number): number {
    if (block === this.#block) return this.#blockOffset;
    this.#block = block;
    if (this.#s.subformat === 'fixed') {
      this.#blockOffset = this.#dataStart + block * this.#s.blockSize;
    } else {
      this.#blockOffset = this.#next;
      this.#next += this.#s.blockSize;
      setBatEntry(this.#bat, payloadIndex(this.#g, block), PAYLOAD_FULLY_PRESENT, this.#blockOffset);
    }
    return this.#blockOffset;
  }

  async finish(): Promise<void> {
    await this.#out.drain();
    const fixed = this.#s.subformat === 'fixed';
    const dataWriteGuid = randomUUID();
    const fileWriteGuid = randomUUID();
    const sink = this.#sink;
    await sink.write(0, buildFileIdentifier('Ferry'));
    // Two up-to-date headers (spec 2.2.2.1); the second, with the higher number, is current.
    for (const [i, at] of HEADER_OFFSETS.entries()) {
      await sink.write(
        at,
        buildHeader({
          sequence: BigInt(i + 1),
          fileWriteGuid,
          dataWriteGuid,
          logLength: LOG_LENGTH,
          logOffset: LOG_OFFSET,
        }),
      );
    }
    const table = buildRegionTable([
      { guid: GUID_BAT_REGION, offset: BAT_OFFSET, length: this.#batLength, required: true },
      { guid: GUID_METADATA_REGION, offset: METADATA_OFFSET, length: METADATA_LENGTH, required: true },
    ]);
    for (const at of REGION_TABLE_OFFSETS) await sink.write(at, table);
    const metadata = buildMetadataRegion(
      standardMetadataItems({
        blockSize: this.#s.blockSize,
        virtualSize: this.#g.virtualSize,
        logicalSectorSize: this.#s.logicalSectorSize,
        physicalSectorSize: this.#s.logicalSectorSize,
        virtualDiskId: randomUUID(),
        leaveBlocksAllocated: fixed,
      }),
    );
    await sink.write(METADATA_OFFSET, metadata);
    if (this.#bat.length > 0) await sink.write(BAT_OFFSET, this.#bat);
    const end = fixed ? this.#dataStart + this.#g.dataBlocks * this.#s.blockSize : this.#next;
    await sink.truncate(Math.max(end, this.#dataStart));
  }
}
