/**
 * Test support: builds VHDX images in memory that neither QEMU nor Ferry's writer make
 * (differencing disks with sector bitmaps, 4 KiB logical sectors, pending logs), and
 * re-checksums structures after a test patches them. Used by unit, integration and
 * hostile tests; never by the driver itself.
 */
import { bitmapIndex, geometry, payloadIndex } from './bat.js';
import {
  buildFileIdentifier,
  buildHeader,
  buildMetadataRegion,
  buildRegionTable,
  setBatEntry,
  standardMetadataItems,
  type MetadataItem,
} from './build.js';
import { crc32cWithZeroedField } from './crc32c.js';
import { writeGuid } from './guid.js';
import {
  GUID_BAT_REGION,
  GUID_METADATA_REGION,
  HEADER_CHECKSUM_OFFSET,
  HEADER_OFFSETS,
  HEADER_SIZE,
  LOG_CHECKSUM_OFFSET,
  LOG_SECTOR_SIZE,
  MiB,
  PAYLOAD_FULLY_PRESENT,
  PAYLOAD_PARTIALLY_PRESENT,
  REGION_CHECKSUM_OFFSET,
  REGION_TABLE_OFFSETS,
  REGION_TABLE_SIZE,
  SB_PRESENT,
} from './layout.js';

export const TEST_LAYOUT = {
  logOffset: 1 * MiB,
  logLength: 1 * MiB,
  metadataOffset: 2 * MiB,
  batOffset: 3 * MiB,
} as const;

export interface TestBlock {
  /** BAT state; FULLY_PRESENT / PARTIALLY_PRESENT blocks are stored. */
  readonly state: number;
  /** Block content (blockSize bytes or fewer, zero-padded) for stored blocks. */
  readonly data?: Buffer;
  /** PARTIALLY_PRESENT: which logical sectors of the block are present (the others are the parent's). */
  readonly sectors?: readonly number[];
}

export interface TestImage {
  readonly virtualSize: number;
  readonly blockSize: number;
  readonly logicalSectorSize?: 512 | 4096;
  readonly leaveBlocksAllocated?: boolean;
  readonly parentLocator?: ReadonlyArray<readonly [string, string]>;
  readonly dataWriteGuid?: string;
  readonly blocks?: ReadonlyMap<number, TestBlock>;
  readonly extraMetadata?: readonly MetadataItem[];
}

export interface BuiltImage {
  readonly bytes: Buffer;
  readonly batOffset: number;
  readonly batLength: number;
  /** File offset of each stored payload block. */
  readonly blockOffsets: ReadonlyMap<number, number>;
}

/** A complete VHDX (log empty) with the given blocks stored in index order after the BAT. */
export function buildTestImage(t: TestImage): BuiltImage {
  const lss = t.logicalSectorSize ?? 512;
  const hasParent = t.parentLocator !== undefined;
  const g = geometry({
    virtualSize: t.virtualSize,
    blockSize: t.blockSize,
    logicalSectorSize: lss,
    hasParent,
  });
  const bat = Buffer.alloc(g.totalEntries * 8);
  const batLength = Math.max(MiB, Math.ceil(bat.length / MiB) * MiB);
  let next = TEST_LAYOUT.batOffset + batLength;
  const parts: Array<[number, Buffer]> = [];
  const blockOffsets = new Map<number, number>();
  const bitmaps = new Map<number, Buffer>();
  for (const [block, b] of [...(t.blocks ?? new Map<number, TestBlock>())].sort((x, y) => x[0] - y[0])) {
    const stored = b.state === PAYLOAD_FULLY_PRESENT || b.state === PAYLOAD_PARTIALLY_PRESENT;
    setBatEntry(bat, payloadIndex(g, block), b.state, stored ? next : 0);
    if (!stored) continue;
    blockOffsets.set(block, next);
    if (b.data) parts.push([next, b.data]);
    next += t.blockSize;
    if (b.state === PAYLOAD_PARTIALLY_PRESENT) {
      const chunk = Math.floor(block / g.chunkRatio);
      const bm = bitmaps.get(chunk) ?? Buffer.alloc(MiB);
      bitmaps.set(chunk, bm);
      const base = (block % g.chunkRatio) * g.sectorsPerBlock;
      for (const s of b.sectors ?? []) {
        const bit = base + s;
        bm[bit >>> 3] = (bm[bit >>> 3] as number) | (1 << (bit & 7));
      }
    }
  }
  for (const [chunk, bm] of bitmaps) {
    setBatEntry(bat, bitmapIndex(g, chunk), SB_PRESENT, next);
    parts.push([next, bm]);
    next += MiB;
  }
  const guid = t.dataWriteGuid ?? '11111111-2222-3333-4444-555555555555';
  const header = (sequence: bigint) =>
    buildHeader({
      sequence,
      fileWriteGuid: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
      dataWriteGuid: guid,
      logLength: TEST_LAYOUT.logLength,
      logOffset: TEST_LAYOUT.logOffset,
    });
  const region = buildRegionTable([
    { guid: GUID_BAT_REGION, offset: TEST_LAYOUT.batOffset, length: batLength },
    { guid: GUID_METADATA_REGION, offset: TEST_LAYOUT.metadataOffset, length: MiB },
  ]);
  const metadata = buildMetadataRegion([
    ...standardMetadataItems({
      blockSize: t.blockSize,
      virtualSize: t.virtualSize,
      logicalSectorSize: lss,
      physicalSectorSize: 4096,
      virtualDiskId: '99999999-8888-7777-6666-555555555555',
      leaveBlocksAllocated: t.leaveBlocksAllocated ?? false,
      ...(t.parentLocator ? { parentLocator: t.parentLocator } : {}),
    }),
    ...(t.extraMetadata ?? []),
  ]);
  const bytes = Buffer.alloc(next);
  buildFileIdentifier('ferry test').copy(bytes, 0);
  header(1n).copy(bytes, HEADER_OFFSETS[0]);
  header(2n).copy(bytes, HEADER_OFFSETS[1]);
  for (const at of REGION_TABLE_OFFSETS) region.copy(bytes, at);
  metadata.copy(bytes, TEST_LAYOUT.metadataOffset);
  bat.copy(bytes, TEST_LAYOUT.batOffset);
  for (const [at, data] of parts) data.copy(bytes, at);
  return { bytes, batOffset: TEST_LAYOUT.batOffset, batLength, blockOffsets };
}

/** Recomputes the checksum of header `slot` (1 or 2) after a patch. */
export function rehashHeader(image: Buffer, slot: 1 | 2): void {
  const at = HEADER_OFFSETS[slot - 1] as number;
  const h = image.subarray(at, at + HEADER_SIZE);
  h.writeUInt32LE(crc32cWithZeroedField(h, HEADER_CHECKSUM_OFFSET), HEADER_CHECKSUM_OFFSET);
}

/** Recomputes the checksum of region table copy `slot` (1 or 2) after a patch. */
export function rehashRegionTable(image: Buffer, slot: 1 | 2): void {
  const at = REGION_TABLE_OFFSETS[slot - 1] as number;
  const t = image.subarray(at, at + REGION_TABLE_SIZE);
  t.writeUInt32LE(crc32cWithZeroedField(t, REGION_CHECKSUM_OFFSET), REGION_CHECKSUM_OFFSET);
}

/** Sets LogGuid in both headers (and re-checksums them). */
export function setLogGuid(image: Buffer, logGuid: string): void {
  for (const slot of [1, 2] as const) {
    writeGuid(image, (HEADER_OFFSETS[slot - 1] as number) + 48, logGuid);
    rehashHeader(image, slot);
  }
}

export type TestDescriptor =
  | { readonly kind: 'data'; readonly fileOffset: number; readonly data: Buffer }
  | { readonly kind: 'zero'; readonly fileOffset: number; readonly length: number };

export interface TestLogEntry {
  readonly sequence: bigint;
  readonly logGuid: string;
  /** Byte offset in the log of the sequence's tail entry. */
  readonly tail: number;
  readonly flushedFileOffset: number;
  readonly lastFileOffset: number;
  readonly descriptors: readonly TestDescriptor[];
}

/** One log entry (spec 2.3.1): descriptor sectors, then a data sector per data descriptor. */
export function buildLogEntry(e: TestLogEntry): Buffer {
  const descSectors = Math.ceil((e.descriptors.length + 2) / 128);
  const data = e.descriptors.filter((d) => d.kind === 'data');
  const buf = Buffer.alloc((descSectors + data.length) * LOG_SECTOR_SIZE);
  buf.write('loge', 0, 'latin1');
  buf.writeUInt32LE(buf.length, 8);
  buf.writeUInt32LE(e.tail, 12);
  buf.writeBigUInt64LE(e.sequence, 16);
  buf.writeUInt32LE(e.descriptors.length, 24);
  writeGuid(buf, 32, e.logGuid);
  buf.writeBigUInt64LE(BigInt(e.flushedFileOffset), 48);
  buf.writeBigUInt64LE(BigInt(e.lastFileOffset), 56);
  let sector = descSectors;
  e.descriptors.forEach((d, i) => {
    const at = 64 + i * 32;
    if (d.kind === 'data') {
      buf.write('desc', at, 'latin1');
      d.data.copy(buf, at + 4, 4092, 4096); // TrailingBytes
      d.data.copy(buf, at + 8, 0, 8); // LeadingBytes
      const p = sector++ * LOG_SECTOR_SIZE;
      buf.write('data', p, 'latin1');
      buf.writeUInt32LE(Number(e.sequence >> 32n), p + 4);
      d.data.copy(buf, p + 8, 8, 4092);
      buf.writeUInt32LE(Number(e.sequence & 0xffffffffn), p + 4092);
    } else {
      buf.write('zero', at, 'latin1');
      buf.writeBigUInt64LE(BigInt(d.length), at + 8);
    }
    buf.writeBigUInt64LE(BigInt(d.fileOffset), at + 16);
    buf.writeBigUInt64LE(e.sequence, at + 24);
  });
  buf.writeUInt32LE(crc32cWithZeroedField(buf, LOG_CHECKSUM_OFFSET), LOG_CHECKSUM_OFFSET);
  return buf;
}
