/**
 * Serializers for VHDX structures: the writer builds its files with them, and tests use
 * them to craft images the writer never makes (differencing disks, 4 KiB sectors, logs).
 * Pure: bytes in memory only.
 */
import { crc32cWithZeroedField } from './crc32c.js';
import { writeGuid, ZERO_GUID } from './guid.js';
import {
  BAT_ENTRY_SIZE,
  BAT_OFFSET_SHIFT,
  FILE_ID_CREATOR_BYTES,
  FILE_ID_CREATOR_OFFSET,
  FILE_ID_SIGNATURE,
  FILE_PARAMS_HAS_PARENT,
  FILE_PARAMS_LEAVE_BLOCKS_ALLOCATED,
  GUID_FILE_PARAMETERS,
  GUID_LOGICAL_SECTOR_SIZE,
  GUID_PAGE83_DATA,
  GUID_PARENT_LOCATOR,
  GUID_PHYSICAL_SECTOR_SIZE,
  GUID_VHDX_PARENT_LOCATOR_TYPE,
  GUID_VIRTUAL_DISK_SIZE,
  HEADER_CHECKSUM_OFFSET,
  HEADER_SIGNATURE,
  HEADER_SIZE,
  HEADER_VERSION,
  META_FLAG_IS_REQUIRED,
  META_FLAG_IS_VIRTUAL_DISK,
  METADATA_ENTRY_SIZE,
  METADATA_HEADER_SIZE,
  METADATA_ITEMS_START,
  METADATA_SIGNATURE,
  MiB,
  PARENT_LOCATOR_ENTRY_SIZE,
  PARENT_LOCATOR_HEADER_SIZE,
  REGION_CHECKSUM_OFFSET,
  REGION_ENTRY_SIZE,
  REGION_HEADER_SIZE,
  REGION_SIGNATURE,
  REGION_TABLE_SIZE,
} from './layout.js';

/** The file type identifier (first 64 KiB): signature and a UTF-16 creator string. */
export function buildFileIdentifier(creator: string): Buffer {
  const buf = Buffer.alloc(FILE_ID_CREATOR_OFFSET + FILE_ID_CREATOR_BYTES);
  buf.write(FILE_ID_SIGNATURE, 0, 'latin1');
  buf.write(creator.slice(0, FILE_ID_CREATOR_BYTES / 2 - 1), FILE_ID_CREATOR_OFFSET, 'utf16le');
  return buf;
}

export interface HeaderFields {
  readonly sequence: bigint;
  readonly fileWriteGuid: string;
  readonly dataWriteGuid: string;
  readonly logGuid?: string;
  readonly logLength: number;
  readonly logOffset: number;
  readonly logVersion?: number;
  readonly version?: number;
}

/** One 4 KiB header with its checksum. */
export function buildHeader(h: HeaderFields): Buffer {
  const buf = Buffer.alloc(HEADER_SIZE);
  buf.write(HEADER_SIGNATURE, 0, 'latin1');
  buf.writeBigUInt64LE(h.sequence, 8);
  writeGuid(buf, 16, h.fileWriteGuid);
  writeGuid(buf, 32, h.dataWriteGuid);
  writeGuid(buf, 48, h.logGuid ?? ZERO_GUID);
  buf.writeUInt16LE(h.logVersion ?? 0, 64);
  buf.writeUInt16LE(h.version ?? HEADER_VERSION, 66);
  buf.writeUInt32LE(h.logLength, 68);
  buf.writeBigUInt64LE(BigInt(h.logOffset), 72);
  buf.writeUInt32LE(crc32cWithZeroedField(buf, HEADER_CHECKSUM_OFFSET), HEADER_CHECKSUM_OFFSET);
  return buf;
}

export interface RegionSpec {
  readonly guid: string;
  readonly offset: number;
  readonly length: number;
  readonly required?: boolean;
}

/** A 64 KiB region table with its checksum. */
export function buildRegionTable(regions: readonly RegionSpec[]): Buffer {
  const buf = Buffer.alloc(REGION_TABLE_SIZE);
  buf.write(REGION_SIGNATURE, 0, 'latin1');
  buf.writeUInt32LE(regions.length, 8);
  regions.forEach((r, i) => {
    const at = REGION_HEADER_SIZE + i * REGION_ENTRY_SIZE;
    writeGuid(buf, at, r.guid);
    buf.writeBigUInt64LE(BigInt(r.offset), at + 16);
    buf.writeUInt32LE(r.length, at + 24);
    buf.writeUInt32LE(r.required === false ? 0 : 1, at + 28);
  });
  buf.writeUInt32LE(crc32cWithZeroedField(buf, REGION_CHECKSUM_OFFSET), REGION_CHECKSUM_OFFSET);
  return buf;
}

export interface MetadataItem {
  readonly guid: string;
  readonly data: Buffer;
  /** META_FLAG_* bits. */
  readonly flags: number;
}

/** The metadata table followed by its items (items packed from offset 64 KiB). */
export function buildMetadataRegion(items: readonly MetadataItem[]): Buffer {
  const itemBytes = items.reduce((n, it) => n + it.data.length, 0);
  const buf = Buffer.alloc(METADATA_ITEMS_START + itemBytes);
  buf.write(METADATA_SIGNATURE, 0, 'latin1');
  buf.writeUInt16LE(items.length, 10);
  let offset = METADATA_ITEMS_START;
  items.forEach((it, i) => {
    const at = METADATA_HEADER_SIZE + i * METADATA_ENTRY_SIZE;
    writeGuid(buf, at, it.guid);
    buf.writeUInt32LE(it.data.length === 0 ? 0 : offset, at + 16);
    buf.writeUInt32LE(it.data.length, at + 20);
    buf.writeUInt32LE(it.flags, at + 24);
    it.data.copy(buf, offset);
    offset += it.data.length;
  });
  return buf;
}

export interface DiskParameters {
  readonly blockSize: number;
  readonly virtualSize: number;
  readonly logicalSectorSize: number;
  readonly physicalSectorSize: number;
  readonly virtualDiskId: string;
  readonly leaveBlocksAllocated?: boolean;
  /** Key/value pairs of a VHDX parent locator; sets HasParent. */
  readonly parentLocator?: ReadonlyArray<readonly [string, string]>;
}

/** The five required items (QEMU's order and flags), plus a parent locator when given. */
export function standardMetadataItems(p: DiskParameters): MetadataItem[] {
  const params = Buffer.alloc(8);
  params.writeUInt32LE(p.blockSize, 0);
  params.writeUInt32LE(
    (p.leaveBlocksAllocated ? FILE_PARAMS_LEAVE_BLOCKS_ALLOCATED : 0) |
      (p.parentLocator ? FILE_PARAMS_HAS_PARENT : 0),
    4,
  );
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(p.virtualSize));
  const id = Buffer.alloc(16);
  writeGuid(id, 0, p.virtualDiskId);
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  const disk = META_FLAG_IS_REQUIRED | META_FLAG_IS_VIRTUAL_DISK;
  const items: MetadataItem[] = [
    { guid: GUID_FILE_PARAMETERS, data: params, flags: META_FLAG_IS_REQUIRED },
    { guid: GUID_VIRTUAL_DISK_SIZE, data: size, flags: disk },
    { guid: GUID_PAGE83_DATA, data: id, flags: disk },
    { guid: GUID_LOGICAL_SECTOR_SIZE, data: u32(p.logicalSectorSize), flags: disk },
    { guid: GUID_PHYSICAL_SECTOR_SIZE, data: u32(p.physicalSectorSize), flags: disk },
  ];
  if (p.parentLocator) {
    items.push({
      guid: GUID_PARENT_LOCATOR,
      data: buildParentLocator(p.parentLocator),
      flags: META_FLAG_IS_REQUIRED,
    });
  }
  return items;
}

/** A VHDX parent locator item: header, entries, then UTF-16LE keys and values. */
export function buildParentLocator(
  pairs: ReadonlyArray<readonly [string, string]>,
  type = GUID_VHDX_PARENT_LOCATOR_TYPE,
): Buffer {
  const strings = pairs.flatMap(([k, v]) => [Buffer.from(k, 'utf16le'), Buffer.from(v, 'utf16le')]);
  const tableEnd = PARENT_LOCATOR_HEADER_SIZE + pairs.length * PARENT_LOCATOR_ENTRY_SIZE;
  const buf = Buffer.alloc(tableEnd + strings.reduce((n, s) => n + s.length, 0));
  writeGuid(buf, 0, type);
  buf.writeUInt16LE(pairs.length, 18);
  let at = tableEnd;
  pairs.forEach((_, i) => {
    const e = PARENT_LOCATOR_HEADER_SIZE + i * PARENT_LOCATOR_ENTRY_SIZE;
    const key = strings[2 * i] as Buffer;
    const value = strings[2 * i + 1] as Buffer;
    buf.writeUInt32LE(at, e);
    key.copy(buf, at);
    at += key.length;
    buf.writeUInt32LE(at, e + 4);
    value.copy(buf, at);
    at += value.length;
    buf.writeUInt16LE(key.length, e + 8);
    buf.writeUInt16LE(value.length, e + 10);
  });
  return buf;
}

/** Writes BAT entry `index` (state and file offset, which must be 1 MiB-aligned). */
export function setBatEntry(bat: Buffer, index: number, state: number, fileOffset: number): void {
  const mb = fileOffset / MiB;
  const at = index * BAT_ENTRY_SIZE;
  bat.writeUInt32LE((((mb % 4096) << BAT_OFFSET_SHIFT) | state) >>> 0, at);
  bat.writeUInt32LE(Math.floor(mb / 4096), at + 4);
}
