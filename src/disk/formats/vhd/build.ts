/**
 * Serialising VHD structures (footer, dynamic header, BAT): used by the writer, and by
 * tests to build images in memory. Every field is written big-endian and the checksums
 * are computed here.
 */
import { vhdChecksum } from './header.js';
import {
  BAT_UNALLOCATED,
  DISK_TYPE,
  DYN_HEADER_COOKIE,
  DYN_HEADER_SIZE,
  F,
  FEATURE_RESERVED,
  FOOTER_COOKIE,
  FOOTER_SIZE,
  FORMAT_VERSION,
  H,
  MAX_CHS_SECTORS,
  SECTOR,
  type DiskTypeName,
} from './layout.js';

export interface Geometry {
  readonly cylinders: number;
  readonly heads: number;
  readonly sectorsPerTrack: number;
}

/** CHS geometry for a sector count: the algorithm of the spec's appendix ("CHS calculation"). */
export function chsGeometry(totalSectors: number): Geometry {
  const total = Math.min(totalSectors, MAX_CHS_SECTORS);
  let spt: number;
  let heads: number;
  let cth: number;
  if (total >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cth = Math.floor(total / spt);
  } else {
    spt = 17;
    cth = Math.floor(total / spt);
    heads = Math.max(4, Math.floor((cth + 1023) / 1024));
    if (cth >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cth = Math.floor(total / spt);
    }
    if (cth >= heads * 1024) {
      spt = 63;
      heads = 16;
      cth = Math.floor(total / spt);
    }
  }
  return { cylinders: Math.floor(cth / heads), heads, sectorsPerTrack: spt };
}

export interface FooterSpec {
  readonly diskType: DiskTypeName;
  /** Bytes; stored as original and current size. */
  readonly size: number;
  /** Offset of the dynamic header; omitted for fixed disks (all ones). */
  readonly dataOffset?: number;
  readonly uniqueId: Buffer;
  /** Seconds since 2000-01-01 UTC. */
  readonly timestamp: number;
  readonly creatorApp?: string;
  readonly creatorVersion?: number;
  readonly creatorOs?: string;
  readonly geometry?: Geometry;
}

export function buildFooter(spec: FooterSpec): Buffer {
  const buf = Buffer.alloc(FOOTER_SIZE);
  buf.write(FOOTER_COOKIE, F.cookie, 'latin1');
  buf.writeUInt32BE(FEATURE_RESERVED, F.features);
  buf.writeUInt32BE(FORMAT_VERSION, F.version);
  buf.writeBigUInt64BE(
    spec.dataOffset === undefined ? 0xffff_ffff_ffff_ffffn : BigInt(spec.dataOffset),
    F.dataOffset,
  );
  buf.writeUInt32BE(spec.timestamp >>> 0, F.timestamp);
  buf.write((spec.creatorApp ?? 'qem2').padEnd(4, '\0').slice(0, 4), F.creatorApp, 'latin1');
  buf.writeUInt32BE(spec.creatorVersion ?? 0x0005_0003, F.creatorVersion);
  buf.write((spec.creatorOs ?? 'Wi2k').padEnd(4, '\0').slice(0, 4), F.creatorOs, 'latin1');
  buf.writeBigUInt64BE(BigInt(spec.size), F.originalSize);
  buf.writeBigUInt64BE(BigInt(spec.size), F.currentSize);
  const g = spec.geometry ?? chsGeometry(Math.floor(spec.size / SECTOR));
  buf.writeUInt16BE(g.cylinders, F.cylinders);
  buf[F.heads] = g.heads;
  buf[F.sectorsPerTrack] = g.sectorsPerTrack;
  buf.writeUInt32BE(DISK_TYPE[spec.diskType], F.diskType);
  spec.uniqueId.copy(buf, F.uniqueId, 0, 16);
  buf.writeUInt32BE(vhdChecksum(buf, F.checksum), F.checksum);
  return buf;
}

export interface LocatorSpec {
  readonly platform: number;
  readonly dataOffset: number;
  readonly dataLength: number;
  /** Bytes reserved for the payload (the spec says sectors; Hyper-V writes bytes). */
  readonly dataSpace: number;
}

export interface HeaderSpec {
  readonly tableOffset: number;
  readonly maxTableEntries: number;
  readonly blockSize: number;
  readonly parentId?: Buffer;
  readonly parentTimestamp?: number;
  /** Stored UTF-16BE, at most 255 characters. */
  readonly parentName?: string;
  readonly locators?: readonly LocatorSpec[];
}

export function buildDynamicHeader(spec: HeaderSpec): Buffer {
  const buf = Buffer.alloc(DYN_HEADER_SIZE);
  buf.write(DYN_HEADER_COOKIE, H.cookie, 'latin1');
  // The spec says 0xFFFFFFFF, but Microsoft's tools expect all 64 bits set (QEMU notes the same).
  buf.writeBigUInt64BE(0xffff_ffff_ffff_ffffn, H.dataOffset);
  buf.writeBigUInt64BE(BigInt(spec.tableOffset), H.tableOffset);
  buf.writeUInt32BE(FORMAT_VERSION, H.version);
  buf.writeUInt32BE(spec.maxTableEntries, H.maxTableEntries);
  buf.writeUInt32BE(spec.blockSize, H.blockSize);
  spec.parentId?.copy(buf, H.parentId, 0, 16);
  buf.writeUInt32BE((spec.parentTimestamp ?? 0) >>> 0, H.parentTimestamp);
  if (spec.parentName) {
    const name = Buffer.from(spec.parentName.slice(0, 255), 'utf16le').swap16();
    name.copy(buf, H.parentName);
  }
  (spec.locators ?? []).slice(0, H.locatorCount).forEach((l, i) => {
    const at = H.locators + i * H.locatorSize;
    buf.writeUInt32BE(l.platform, at);
    buf.writeUInt32BE(l.dataSpace, at + 4);
    buf.writeUInt32BE(l.dataLength, at + 8);
    buf.writeBigUInt64BE(BigInt(l.dataOffset), at + 16);
  });
  buf.writeUInt32BE(vhdChecksum(buf, H.checksum), H.checksum);
  return buf;
}

/** The BAT as stored: big-endian entries, padded with unallocated entries to a sector. */
export function buildBat(bat: Uint32Array): Buffer {
  const bytes = Math.ceil((bat.length * 4) / SECTOR) * SECTOR;
  const buf = Buffer.alloc(bytes, 0xff);
  for (let i = 0; i < bat.length; i++) buf.writeUInt32BE(bat[i] ?? BAT_UNALLOCATED, i * 4);
  return buf;
}

/** Seconds since the VHD epoch (2000-01-01 00:00 UTC), for "now". */
export function vhdNow(): number {
  return Math.max(0, Math.floor(Date.now() / 1000) - 946_684_800);
}
