/**
 * VHD footer and dynamic header: bytes → frozen, validated values. Pure (no I/O); the
 * reader hands in the bytes and the file size.
 */
import {
  ImageCorruptError,
  ImageTooLargeError,
  ImageTruncatedError,
  ImageUnsupportedError,
} from '../../../errors/index.js';
import { MAX_METADATA_TABLE_BYTES } from '../../limits.js';
import {
  CURRENT_SIZE_CREATORS,
  DISK_TYPE,
  DYN_HEADER_COOKIE,
  DYN_HEADER_SIZE,
  F,
  FOOTER_COOKIE,
  FOOTER_SIZE,
  H,
  MAX_BLOCK_SIZE,
  MAX_LOCATOR_BYTES,
  MAX_CHS_SECTORS,
  MAX_VIRTUAL_SECTORS,
  MIN_BLOCK_SIZE,
  SECTOR,
  bitmapBytes,
  type DiskTypeName,
} from './layout.js';
import { decodeUtf16 } from './text.js';

export interface VhdFooter {
  readonly features: number;
  readonly version: number;
  /** Offset of the dynamic header (dynamic/differencing); all ones for fixed disks. */
  readonly dataOffset: bigint;
  /** Seconds since 2000-01-01 00:00 UTC. */
  readonly timestamp: number;
  /** Four raw characters, e.g. "vpc ", "win ", "qemu", "tap\0". */
  readonly creatorApp: string;
  readonly creatorVersion: number;
  readonly creatorOs: string;
  readonly originalSize: bigint;
  readonly currentSize: bigint;
  readonly cylinders: number;
  readonly heads: number;
  readonly sectorsPerTrack: number;
  readonly diskType: DiskTypeName;
  /** Lowercase RFC 4122 text of the 16 stored bytes, in stored order. */
  readonly uniqueId: string;
  readonly savedState: boolean;
  /** The size QEMU 7.2 gives the disk (see sizeSource). */
  readonly virtualSize: number;
  readonly sizeSource: 'chs' | 'current_size';
}

export interface LocatorEntry {
  readonly index: number;
  readonly platform: number;
  readonly dataSpace: number;
  readonly dataLength: number;
  readonly dataOffset: number;
}

export interface DynamicHeader {
  readonly tableOffset: number;
  readonly version: number;
  readonly maxTableEntries: number;
  readonly blockSize: number;
  readonly bitmapSize: number;
  readonly parentId: string;
  readonly parentTimestamp: number;
  /** Parent's file name as stored (UTF-16BE), empty when absent. */
  readonly parentName: string;
  /** Non-empty locator entries (platform code ≠ 0), bounds already checked. */
  readonly locators: readonly LocatorEntry[];
}

/** Ones' complement of the byte sum, with the 4-byte checksum field at `at` counted as 0. */
export function vhdChecksum(buf: Buffer, at: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) {
    if (i < at || i >= at + 4) sum += buf[i] as number;
  }
  return ~sum >>> 0;
}

export function formatUuid(bytes: Buffer): string {
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function isZeroUuid(id: string): boolean {
  return /^[0-]+$/.test(id);
}

const ctx = (
  name: string,
  field: string,
  value: string | number,
  extra: Record<string, string | number> = {},
) => ({
  format: 'vhd',
  file: name,
  field,
  value,
  ...extra,
});

/** True if `buf` (≥ 8 bytes) starts with the footer cookie. */
export function hasFooterCookie(buf: Buffer): boolean {
  return buf.length >= 8 && buf.toString('latin1', 0, 8) === FOOTER_COOKIE;
}

/**
 * Parses and validates a 512-byte footer. `where` names the copy for messages ("footer
 * copy at offset 0", "footer at the end of the file").
 */
export function parseFooter(buf: Buffer, name: string, where: string): VhdFooter {
  if (buf.length !== FOOTER_SIZE || !hasFooterCookie(buf)) {
    throw new ImageCorruptError(
      `${name}: no VHD footer ("conectix") in the ${where}`,
      ctx(name, 'cookie', where),
    );
  }
  const stored = buf.readUInt32BE(F.checksum);
  const computed = vhdChecksum(buf, F.checksum);
  if (stored !== computed) {
    // QEMU 7.2 refuses the image too ("Incorrect header checksum").
    throw new ImageCorruptError(
      `${name}: VHD ${where} checksum is 0x${stored.toString(16)}, expected 0x${computed.toString(16)}`,
      ctx(name, 'footer.checksum', stored, { expected: computed }),
    );
  }
  const version = buf.readUInt32BE(F.version);
  if (version >>> 16 !== 1) {
    throw new ImageUnsupportedError(
      `${name}: VHD file format version 0x${version.toString(16)} (only major version 1 exists)`,
      ctx(name, 'footer.version', version),
    );
  }
  const typeCode = buf.readUInt32BE(F.diskType);
  const diskType = (Object.keys(DISK_TYPE) as DiskTypeName[]).find((k) => DISK_TYPE[k] === typeCode);
  if (!diskType) {
    throw new ImageUnsupportedError(
      `${name}: VHD disk type ${typeCode} is not fixed (2), dynamic (3) or differencing (4)`,
      ctx(name, 'footer.diskType', typeCode),
    );
  }
  const creatorApp = buf.toString('latin1', F.creatorApp, F.creatorApp + 4);
  const currentSize = buf.readBigUInt64BE(F.currentSize);
  const cylinders = buf.readUInt16BE(F.cylinders);
  const heads = buf[F.heads] as number;
  const sectorsPerTrack = buf[F.sectorsPerTrack] as number;
  const chsSectors = cylinders * heads * sectorsPerTrack;
  // QEMU 7.2 (vpc_open): CHS geometry unless the creator is one known to use current_size,
  // or the geometry is the maximum one (the size would not fit in CHS).
  const useCurrentSize = CURRENT_SIZE_CREATORS.includes(creatorApp) || chsSectors === MAX_CHS_SECTORS;
  const sectors = useCurrentSize ? currentSize / BigInt(SECTOR) : BigInt(chsSectors);
  if (sectors > BigInt(MAX_VIRTUAL_SECTORS)) {
    throw new ImageTooLargeError(
      `${name}: VHD virtual size ${sectors * BigInt(SECTOR)} bytes exceeds the format's 2040 GiB maximum`,
      ctx(name, useCurrentSize ? 'footer.currentSize' : 'footer.geometry', String(sectors * BigInt(SECTOR)), {
        limit: MAX_VIRTUAL_SECTORS * SECTOR,
      }),
    );
  }
  return Object.freeze({
    features: buf.readUInt32BE(F.features),
    version,
    dataOffset: buf.readBigUInt64BE(F.dataOffset),
    timestamp: buf.readUInt32BE(F.timestamp),
    creatorApp,
    creatorVersion: buf.readUInt32BE(F.creatorVersion),
    creatorOs: buf.toString('latin1', F.creatorOs, F.creatorOs + 4),
    originalSize: buf.readBigUInt64BE(F.originalSize),
    currentSize,
    cylinders,
    heads,
    sectorsPerTrack,
    diskType,
    uniqueId: formatUuid(buf.subarray(F.uniqueId, F.uniqueId + 16)),
    savedState: buf[F.savedState] !== 0,
    virtualSize: Number(sectors) * SECTOR,
    sizeSource: useCurrentSize ? 'current_size' : 'chs',
  });
}

/** A checked conversion of a stored 64-bit offset that must lie inside the file. */
function offsetInFile(value: bigint, length: number, fileSize: number, name: string, field: string): number {
  if (value + BigInt(length) > BigInt(fileSize)) {
    throw new ImageTruncatedError(
      `${name}: VHD ${field} ${value} (+${length} bytes) lies beyond the end of the file (${fileSize} bytes)`,
      ctx(name, field, String(value), { length, size: fileSize }),
    );
  }
  return Number(value);
}

/** Where the dynamic header lives, checked against the file size. */
export function dynamicHeaderOffset(footer: VhdFooter, fileSize: number, name: string): number {
  return offsetInFile(footer.dataOffset, DYN_HEADER_SIZE, fileSize, name, 'footer.dataOffset');
}

/**
 * Parses and validates the 1024-byte dynamic header against the footer and file size.
 * QEMU ignores the header checksum and version; the spec requires both, and so does
 * Ferry (a damaged header must not be read as a disk).
 */
export function parseDynamicHeader(
  buf: Buffer,
  footer: VhdFooter,
  fileSize: number,
  name: string,
): DynamicHeader {
  if (buf.length !== DYN_HEADER_SIZE || buf.toString('latin1', 0, 8) !== DYN_HEADER_COOKIE) {
    throw new ImageCorruptError(
      `${name}: no VHD dynamic header ("cxsparse") at the footer's data offset`,
      ctx(name, 'header.cookie', String(footer.dataOffset)),
    );
  }
  const stored = buf.readUInt32BE(H.checksum);
  const computed = vhdChecksum(buf, H.checksum);
  if (stored !== computed) {
    throw new ImageCorruptError(
      `${name}: VHD dynamic header checksum is 0x${stored.toString(16)}, expected 0x${computed.toString(16)}`,
      ctx(name, 'header.checksum', stored, { expected: computed }),
    );
  }
  const version = buf.readUInt32BE(H.version);
  if (version >>> 16 !== 1) {
    throw new ImageUnsupportedError(
      `${name}: VHD dynamic header version 0x${version.toString(16)} (only major version 1 exists)`,
      ctx(name, 'header.version', version),
    );
  }
  const blockSize = buf.readUInt32BE(H.blockSize);
  if (blockSize === 0 || (blockSize & (blockSize - 1)) !== 0) {
    throw new ImageCorruptError(
      `${name}: VHD block size ${blockSize} is not a power of two`,
      ctx(name, 'header.blockSize', blockSize),
    );
  }
  if (blockSize < MIN_BLOCK_SIZE) {
    throw new ImageUnsupportedError(
      `${name}: VHD block size ${blockSize} is below ${MIN_BLOCK_SIZE} bytes`,
      ctx(name, 'header.blockSize', blockSize, { limit: MIN_BLOCK_SIZE }),
    );
  }
  if (blockSize > MAX_BLOCK_SIZE) {
    throw new ImageTooLargeError(
      `${name}: VHD block size ${blockSize} exceeds ${MAX_BLOCK_SIZE} bytes`,
      ctx(name, 'header.blockSize', blockSize, { limit: MAX_BLOCK_SIZE }),
    );
  }
  const maxTableEntries = buf.readUInt32BE(H.maxTableEntries);
  if (maxTableEntries * blockSize < footer.virtualSize) {
    throw new ImageCorruptError(
      `${name}: VHD BAT of ${maxTableEntries} entries of ${blockSize} bytes cannot map the ${footer.virtualSize}-byte disk`,
      ctx(name, 'header.maxTableEntries', maxTableEntries, { blockSize, virtualSize: footer.virtualSize }),
    );
  }
  if (maxTableEntries * 4 > MAX_METADATA_TABLE_BYTES) {
    throw new ImageTooLargeError(
      `${name}: VHD BAT of ${maxTableEntries} entries exceeds the ${MAX_METADATA_TABLE_BYTES}-byte table limit`,
      ctx(name, 'header.maxTableEntries', maxTableEntries, { limit: MAX_METADATA_TABLE_BYTES / 4 }),
    );
  }
  const tableOffset = offsetInFile(
    buf.readBigUInt64BE(H.tableOffset),
    maxTableEntries * 4,
    fileSize,
    name,
    'header.tableOffset',
  );

  const locators: LocatorEntry[] = [];
  if (footer.diskType === 'differencing') {
    for (let i = 0; i < H.locatorCount; i++) {
      const at = H.locators + i * H.locatorSize;
      const platform = buf.readUInt32BE(at);
      if (platform === 0) continue;
      const dataLength = buf.readUInt32BE(at + 8);
      if (dataLength > MAX_LOCATOR_BYTES) {
        throw new ImageTooLargeError(
          `${name}: VHD parent locator ${i} is ${dataLength} bytes long (limit ${MAX_LOCATOR_BYTES})`,
          ctx(name, `header.locator[${i}].dataLength`, dataLength, { limit: MAX_LOCATOR_BYTES }),
        );
      }
      const dataOffset = offsetInFile(
        buf.readBigUInt64BE(at + 16),
        dataLength,
        fileSize,
        name,
        `header.locator[${i}].dataOffset`,
      );
      locators.push(
        Object.freeze({ index: i, platform, dataSpace: buf.readUInt32BE(at + 4), dataLength, dataOffset }),
      );
    }
  }
  return Object.freeze({
    tableOffset,
    version,
    maxTableEntries,
    blockSize,
    bitmapSize: bitmapBytes(blockSize),
    parentId: formatUuid(buf.subarray(H.parentId, H.parentId + 16)),
    parentTimestamp: buf.readUInt32BE(H.parentTimestamp),
    // The spec says only "UTF-16"; Virtual PC, Hyper-V, VirtualBox and libvhd store it big-endian.
    parentName: decodeUtf16(buf.subarray(H.parentName, H.parentName + H.parentNameBytes), 'be'),
    locators: Object.freeze(locators),
  });
}
