/**
 * Values → bytes for the structures Ferry writes (the inverse of header.ts). Used by both
 * writers and by tests that craft images.
 */
import {
  COMPRESSION_DEFLATE,
  COMPRESSION_NONE,
  GRAIN_MARKER_BYTES,
  GTE_BYTES,
  GTES_PER_GT,
  HDR,
  NL_CHECK_BYTES,
  SECTOR,
  SPARSE_MAGIC,
} from './layout.js';

export interface HeaderFields {
  readonly version: number;
  readonly flags: number;
  readonly capacitySectors: number;
  readonly grainSectors: number;
  readonly descriptorOffset: number;
  readonly descriptorSectors: number;
  readonly rgdOffset: number;
  /** Sectors, or GD_AT_END. */
  readonly gdOffset: number | bigint;
  readonly overHeadSectors: number;
  readonly compressed: boolean;
}

export function buildSparseHeader(f: HeaderFields): Buffer {
  const buf = Buffer.alloc(SECTOR);
  buf.writeUInt32LE(SPARSE_MAGIC, HDR.magic);
  buf.writeUInt32LE(f.version, HDR.version);
  buf.writeUInt32LE(f.flags >>> 0, HDR.flags);
  buf.writeBigUInt64LE(BigInt(f.capacitySectors), HDR.capacity);
  buf.writeBigUInt64LE(BigInt(f.grainSectors), HDR.grainSize);
  buf.writeBigUInt64LE(BigInt(f.descriptorOffset), HDR.descriptorOffset);
  buf.writeBigUInt64LE(BigInt(f.descriptorSectors), HDR.descriptorSize);
  buf.writeUInt32LE(GTES_PER_GT, HDR.numGTEsPerGT);
  buf.writeBigUInt64LE(BigInt(f.rgdOffset), HDR.rgdOffset);
  buf.writeBigUInt64LE(BigInt(f.gdOffset), HDR.gdOffset);
  buf.writeBigUInt64LE(BigInt(f.overHeadSectors), HDR.overHead);
  NL_CHECK_BYTES.forEach((b, i) => (buf[HDR.singleEndLineChar + i] = b));
  buf.writeUInt16LE(f.compressed ? COMPRESSION_DEFLATE : COMPRESSION_NONE, HDR.compressAlgorithm);
  return buf;
}

/** A metadata marker sector: `sectors` of metadata of `type` follow. */
export function buildMarker(sectors: number, type: number): Buffer {
  const buf = Buffer.alloc(SECTOR);
  buf.writeBigUInt64LE(BigInt(sectors), 0);
  buf.writeUInt32LE(0, 8);
  buf.writeUInt32LE(type, 12);
  return buf;
}

export function buildGrainMarker(lbaSectors: number, size: number): Buffer {
  const buf = Buffer.alloc(GRAIN_MARKER_BYTES);
  buf.writeBigUInt64LE(BigInt(lbaSectors), 0);
  buf.writeUInt32LE(size, 8);
  return buf;
}

/** A u32 table (grain table or directory) as little-endian bytes padded to whole sectors. */
export function tableBytes(table: Uint32Array): Buffer {
  const bytes = table.length * GTE_BYTES;
  const buf = Buffer.alloc(Math.ceil(bytes / SECTOR) * SECTOR);
  for (let i = 0; i < table.length; i++) buf.writeUInt32LE(table[i] as number, i * GTE_BYTES);
  return buf;
}
