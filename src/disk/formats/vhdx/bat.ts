/**
 * The Block Allocation Table (spec 2.5): geometry (chunk ratio, entry counts), entry
 * decoding and the whole-table validation done once at open, so map() can trust it.
 */
import {
  ImageCorruptError,
  ImageTooLargeError,
  ImageTruncatedError,
  type FerryError,
} from '../../../errors/index.js';
import { MAX_METADATA_TABLE_BYTES } from '../../limits.js';
import { overlaps, type Region } from './header.js';
import {
  BAT_ENTRY_SIZE,
  BAT_OFFSET_SHIFT,
  BAT_RESERVED_MASK,
  BAT_STATE_MASK,
  FORMAT,
  HEADER_SECTION_SIZE,
  MiB,
  PAYLOAD_FULLY_PRESENT,
  PAYLOAD_PARTIALLY_PRESENT,
  PAYLOAD_UNMAPPED,
  PAYLOAD_UNMAPPED_V095,
  SB_NOT_PRESENT,
  SB_PRESENT,
  SECTOR_BITMAP_BLOCK_SIZE,
  SECTORS_PER_BITMAP_BLOCK,
} from './layout.js';

export interface Geometry {
  readonly virtualSize: number;
  readonly blockSize: number;
  readonly logicalSectorSize: number;
  readonly hasParent: boolean;
  readonly sectorsPerBlock: number;
  /** Payload blocks per sector bitmap block: 2^23 × logical sector size / block size. */
  readonly chunkRatio: number;
  readonly dataBlocks: number;
  readonly bitmapBlocks: number;
  /** Entries the BAT must hold (spec 2.5): fixed/dynamic and differencing differ. */
  readonly totalEntries: number;
}

export function geometry(g: {
  virtualSize: number;
  blockSize: number;
  logicalSectorSize: number;
  hasParent: boolean;
}): Geometry {
  const chunkRatio = (SECTORS_PER_BITMAP_BLOCK * g.logicalSectorSize) / g.blockSize;
  const dataBlocks = Math.ceil(g.virtualSize / g.blockSize);
  const bitmapBlocks = Math.ceil(dataBlocks / chunkRatio);
  const totalEntries = g.hasParent
    ? bitmapBlocks * (chunkRatio + 1)
    : dataBlocks === 0
      ? 0
      : dataBlocks + Math.floor((dataBlocks - 1) / chunkRatio);
  return Object.freeze({
    virtualSize: g.virtualSize,
    blockSize: g.blockSize,
    logicalSectorSize: g.logicalSectorSize,
    hasParent: g.hasParent,
    sectorsPerBlock: g.blockSize / g.logicalSectorSize,
    chunkRatio,
    dataBlocks,
    bitmapBlocks,
    totalEntries,
  });
}

/** BAT index of payload block `block` (the bitmap entries are interleaved). */
export function payloadIndex(g: Geometry, block: number): number {
  return block + Math.floor(block / g.chunkRatio);
}

/** BAT index of the sector bitmap entry of chunk `chunk`. */
export function bitmapIndex(g: Geometry, chunk: number): number {
  return chunk * (g.chunkRatio + 1) + g.chunkRatio;
}

/** Bytes of the BAT Ferry loads, checked against the region and the table limit. */
export function batBytes(name: string, g: Geometry, regionLength: number): number {
  const bytes = g.totalEntries * BAT_ENTRY_SIZE;
  if (bytes > MAX_METADATA_TABLE_BYTES) {
    throw new ImageTooLargeError(
      `${name}: the BAT needs ${bytes} bytes (limit ${MAX_METADATA_TABLE_BYTES})`,
      {
        format: FORMAT,
        field: 'bat',
        value: bytes,
        limit: MAX_METADATA_TABLE_BYTES,
      },
    );
  }
  if (bytes > regionLength) {
    throw new ImageCorruptError(
      `${name}: the BAT region (${regionLength} bytes) is smaller than its ${bytes}-byte table`,
      {
        format: FORMAT,
        field: 'regionTable.bat.length',
        value: regionLength,
      },
    );
  }
  return bytes;
}

/** The loaded table; entries are decoded on demand (two 32-bit reads, no BigInt). */
export class Bat {
  readonly geometry: Geometry;
  readonly #buf: Buffer;

  constructor(buf: Buffer, g: Geometry) {
    this.#buf = buf;
    this.geometry = g;
  }

  state(index: number): number {
    return this.#buf.readUInt32LE(index * BAT_ENTRY_SIZE) & BAT_STATE_MASK;
  }

  /** File offset in bytes (exact: FileOffsetMB < 2^44, times 2^20 fits a double exactly). */
  offset(index: number): number {
    const at = index * BAT_ENTRY_SIZE;
    const mb = (this.#buf.readUInt32LE(at) >>> BAT_OFFSET_SHIFT) + this.#buf.readUInt32LE(at + 4) * 4096;
    return mb * MiB;
  }

  reserved(index: number): number {
    return this.#buf.readUInt32LE(index * BAT_ENTRY_SIZE) & BAT_RESERVED_MASK;
  }
}

/**
 * Checks every entry once (spec 2.5.1): known states only (PARTIALLY_PRESENT only in a
 * differencing disk, with its sector bitmap present), reserved bits zero, stored blocks
 * 1 MiB-aligned after the header section, inside the file (`fileSize`, after any log
 * replay), clear of `regions` (log, BAT, metadata) and of each other. Like QEMU, the last
 * block may be stored only up to the end of the virtual disk. In fixed and dynamic disks
 * the sector bitmap entries are ignored: QEMU before 8.0 wrote garbage into them.
 */
export function validateBat(name: string, bat: Bat, fileSize: number, regions: readonly Region[]): void {
  const g = bat.geometry;
  const blockMB = g.blockSize / MiB;
  // Sortable keys of stored blocks: offset in MiB × 2, low bit = bitmap block (1 MiB long).
  const keys = new Float64Array(g.totalEntries);
  let stored = 0;
  let partialChunks: Set<number> | undefined;
  for (let i = 0; i < g.totalEntries; i++) {
    const chunk = Math.floor(i / (g.chunkRatio + 1));
    const isBitmap = i % (g.chunkRatio + 1) === g.chunkRatio;
    if (isBitmap && !g.hasParent) continue;
    const block = chunk * g.chunkRatio + (i % (g.chunkRatio + 1));
    if (!isBitmap && block >= g.dataBlocks) continue; // differencing padding entries: never read
    const state = bat.state(i);
    if (bat.reserved(i) !== 0) throw corrupt(name, i, 'has reserved bits set');
    let length: number;
    if (isBitmap) {
      if (state === SB_NOT_PRESENT) continue;
      if (state !== SB_PRESENT) throw corrupt(name, i, `sector bitmap state ${state} is invalid`);
      length = SECTOR_BITMAP_BLOCK_SIZE;
    } else {
      if (state === PAYLOAD_PARTIALLY_PRESENT) {
        if (!g.hasParent) throw corrupt(name, i, 'is PARTIALLY_PRESENT in a disk without a parent');
        (partialChunks ??= new Set()).add(chunk);
      } else if (state !== PAYLOAD_FULLY_PRESENT) {
        // NOT_PRESENT, UNDEFINED, ZERO, UNMAPPED (and v0.95's UNMAPPED): nothing stored.
        if (state <= PAYLOAD_UNMAPPED || state === PAYLOAD_UNMAPPED_V095) continue;
        throw corrupt(name, i, `payload state ${state} is invalid`);
      }
      length = Math.min(g.blockSize, g.virtualSize - block * g.blockSize);
    }
    const offset = bat.offset(i);
    if (offset < HEADER_SECTION_SIZE) throw corrupt(name, i, `points into the header section (${offset})`);
    if (offset + length > fileSize) {
      throw new ImageTruncatedError(
        `${name}: VHDX BAT entry ${i} points to ${offset}..${offset + length}, past the end of the file (${fileSize})`,
        { format: FORMAT, field: 'bat', index: i, offset, size: fileSize },
      );
    }
    const region = { offset, length: isBitmap ? SECTOR_BITMAP_BLOCK_SIZE : g.blockSize };
    if (regions.some((r) => overlaps(r, region))) {
      throw corrupt(name, i, `block at ${offset} overlaps the log, BAT or metadata region`);
    }
    keys[stored++] = (offset / MiB) * 2 + (isBitmap ? 1 : 0);
  }
  if (partialChunks) {
    for (const chunk of partialChunks) {
      const i = bitmapIndex(g, chunk);
      if (i >= g.totalEntries || bat.state(i) !== SB_PRESENT) {
        throw corrupt(name, i, `chunk ${chunk} has PARTIALLY_PRESENT blocks but no sector bitmap`);
      }
    }
  }
  const sorted = keys.subarray(0, stored).sort();
  for (let k = 1; k < sorted.length; k++) {
    const prev = sorted[k - 1] as number;
    const cur = sorted[k] as number;
    const prevEnd = Math.floor(prev / 2) + (prev % 2 === 1 ? 1 : blockMB);
    if (prevEnd > Math.floor(cur / 2)) {
      throw new ImageCorruptError(`${name}: two VHDX blocks overlap at ${Math.floor(cur / 2) * MiB}`, {
        format: FORMAT,
        field: 'bat',
        offset: Math.floor(cur / 2) * MiB,
      });
    }
  }
}

function corrupt(name: string, index: number, what: string): FerryError {
  return new ImageCorruptError(`${name}: VHDX BAT entry ${index} ${what}`, {
    format: FORMAT,
    field: 'bat',
    index,
  });
}
