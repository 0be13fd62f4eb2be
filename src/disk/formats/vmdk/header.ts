/**
 * Sparse extent headers → frozen, validated values. Pure: bytes in, values out. Every
 * field that later becomes an offset, a count or a size is checked here, against the file
 * size when it points into the file; 64-bit fields stay bigint until checked.
 */
import {
  ImageCorruptError,
  ImageTooLargeError,
  ImageTruncatedError,
  ImageUnsupportedError,
} from '../../../errors/index.js';
import { MAX_DESCRIPTOR_BYTES, MAX_METADATA_TABLE_BYTES, MAX_VIRTUAL_SIZE } from '../../limits.js';
import {
  COMPRESSION_DEFLATE,
  COMPRESSION_NONE,
  COWD,
  COWD_GTES_PER_GT,
  COWD_MAGIC,
  FLAG_COMPRESSED,
  FLAG_MARKERS,
  FLAG_NL_DETECT,
  FLAG_RGD,
  FLAG_ZERO_GRAIN,
  GD_AT_END,
  GTE_BYTES,
  GTES_PER_GT,
  HDR,
  KNOWN_FLAGS,
  MAX_GRAIN_SECTORS,
  MAX_VERSION,
  MIN_VERSION,
  NL_CHECK_BYTES,
  SECTOR,
  SPARSE_MAGIC,
} from './layout.js';

/** What the reader needs from either kind of sparse header. */
export interface SparseGeometry {
  readonly kind: 'vmdk4' | 'cowd';
  readonly version: number;
  readonly flags: number;
  /** Virtual size of the extent in sectors (≤ MAX_VIRTUAL_SIZE / 512). */
  readonly capacitySectors: number;
  readonly grainSectors: number;
  readonly gtesPerGt: number;
  /** Byte offset of the grain directory in the file (checked inside it). */
  readonly gdOffset: number;
  readonly gdEntries: number;
  readonly compressed: boolean;
  readonly markers: boolean;
  readonly zeroGrain: boolean;
}

export interface SparseHeader extends SparseGeometry {
  readonly kind: 'vmdk4';
  /** Embedded descriptor (bytes), 0/0 when absent. */
  readonly descriptorOffset: number;
  readonly descriptorBytes: number;
  /** True when the grain directory is found through the footer (VMware streams). */
  readonly gdAtEnd: boolean;
  readonly overHeadSectors: number;
  readonly uncleanShutdown: boolean;
}

function corrupt(source: string, field: string, message: string, value?: string | number): never {
  throw new ImageCorruptError(`${source}: ${message}`, { format: 'vmdk', field, value });
}

export function isSparseMagic(buf: Buffer): boolean {
  return buf.length >= 4 && buf.readUInt32LE(0) === SPARSE_MAGIC;
}

export function isCowdMagic(buf: Buffer): boolean {
  return buf.length >= 4 && buf.readUInt32LE(0) === COWD_MAGIC;
}

/** u64 sector field → byte offset, checked against `limit` bytes. */
function sectorsToBytes(v: bigint, limit: number, source: string, field: string): number {
  if (v > BigInt(Math.floor(limit / SECTOR))) {
    throw new ImageTruncatedError(`${source}: ${field} (sector ${v}) lies beyond the end of the file`, {
      format: 'vmdk',
      field,
      value: v.toString(),
      size: limit,
    });
  }
  return Number(v) * SECTOR;
}

/** Number of grain directory entries a capacity needs, checked against the table cap. */
function gdEntriesFor(
  capacitySectors: number,
  grainSectors: number,
  gtesPerGt: number,
  source: string,
): number {
  const entries = Math.ceil(capacitySectors / (grainSectors * gtesPerGt));
  if (entries * GTE_BYTES > MAX_METADATA_TABLE_BYTES) {
    throw new ImageTooLargeError(`${source}: grain directory of ${entries} entries exceeds the limit`, {
      format: 'vmdk',
      field: 'grain directory',
      value: entries,
      limit: MAX_METADATA_TABLE_BYTES / GTE_BYTES,
    });
  }
  return entries;
}

function checkCapacity(capacitySectors: bigint, source: string): number {
  if (capacitySectors * BigInt(SECTOR) > BigInt(MAX_VIRTUAL_SIZE)) {
    throw new ImageTooLargeError(`${source}: capacity of ${capacitySectors} sectors exceeds the limit`, {
      format: 'vmdk',
      field: 'capacity',
      value: capacitySectors.toString(),
      limit: MAX_VIRTUAL_SIZE,
    });
  }
  return Number(capacitySectors);
}

function checkGrain(grain: bigint, source: string): number {
  if (grain === 0n || (grain & (grain - 1n)) !== 0n) {
    corrupt(source, 'grainSize', `grain size ${grain} sectors is not a power of two`, grain.toString());
  }
  if (grain > BigInt(MAX_GRAIN_SECTORS)) {
    throw new ImageTooLargeError(`${source}: grain size ${grain} sectors exceeds ${MAX_GRAIN_SECTORS}`, {
      format: 'vmdk',
      field: 'grainSize',
      value: grain.toString(),
      limit: MAX_GRAIN_SECTORS,
    });
  }
  return Number(grain);
}

/**
 * Parses a hosted sparse ("KDMV") header. `fileSize` bounds every offset; pass the footer's
 * header with `footer: true` (its gdOffset must be real).
 */
export function parseSparseHeader(
  buf: Buffer,
  fileSize: number,
  source: string,
  options: { footer?: boolean } = {},
): SparseHeader {
  if (buf.length < SECTOR) corrupt(source, 'header', 'header shorter than one sector');
  if (!isSparseMagic(buf)) corrupt(source, 'magic', 'not a VMDK sparse extent (bad magic)');
  const version = buf.readUInt32LE(HDR.version);
  if (version < MIN_VERSION || version > MAX_VERSION) {
    throw new ImageUnsupportedError(`${source}: VMDK sparse version ${version} is not supported`, {
      format: 'vmdk',
      field: 'version',
      value: version,
    });
  }
  const flags = buf.readUInt32LE(HDR.flags);
  if ((flags & ~KNOWN_FLAGS) >>> 0 !== 0) {
    throw new ImageUnsupportedError(`${source}: unknown header flags 0x${(flags >>> 0).toString(16)}`, {
      format: 'vmdk',
      field: 'flags',
      value: flags >>> 0,
    });
  }
  if (flags & FLAG_NL_DETECT) {
    NL_CHECK_BYTES.forEach((b, i) => {
      if (buf[HDR.singleEndLineChar + i] !== b) {
        corrupt(source, 'newline detection', 'newline check bytes are damaged (text-mode transfer?)');
      }
    });
  }
  const algorithm = buf.readUInt16LE(HDR.compressAlgorithm);
  if (algorithm !== COMPRESSION_NONE && algorithm !== COMPRESSION_DEFLATE) {
    throw new ImageUnsupportedError(`${source}: compression algorithm ${algorithm} is not supported`, {
      format: 'vmdk',
      field: 'compressAlgorithm',
      value: algorithm,
    });
  }
  if (flags & FLAG_COMPRESSED && algorithm === COMPRESSION_NONE) {
    corrupt(source, 'compressAlgorithm', 'compressed-grains flag set but no compression algorithm');
  }
  // QEMU decides compression from the algorithm alone; so do we.
  const compressed = algorithm === COMPRESSION_DEFLATE;
  const markers = (flags & FLAG_MARKERS) !== 0;
  const capacityRaw = buf.readBigUInt64LE(HDR.capacity);
  const descOffsetRaw = buf.readBigUInt64LE(HDR.descriptorOffset);
  const descSizeRaw = buf.readBigUInt64LE(HDR.descriptorSize);
  let descriptorOffset = 0;
  let descriptorBytes = 0;
  if (descOffsetRaw !== 0n) {
    if (descSizeRaw === 0n) corrupt(source, 'descriptorSize', 'descriptor offset set but size is 0');
    if (descSizeRaw > BigInt(MAX_DESCRIPTOR_BYTES / SECTOR)) {
      throw new ImageTooLargeError(
        `${source}: embedded descriptor of ${descSizeRaw} sectors exceeds the limit`,
        {
          format: 'vmdk',
          field: 'descriptorSize',
          value: descSizeRaw.toString(),
          limit: MAX_DESCRIPTOR_BYTES / SECTOR,
        },
      );
    }
    descriptorOffset = sectorsToBytes(descOffsetRaw, fileSize, source, 'descriptorOffset');
    descriptorBytes = Number(descSizeRaw) * SECTOR;
    if (descriptorOffset + descriptorBytes > fileSize) {
      throw new ImageTruncatedError(`${source}: embedded descriptor extends past the end of the file`, {
        format: 'vmdk',
        field: 'descriptorSize',
        size: fileSize,
      });
    }
  }
  const capacitySectors = checkCapacity(capacityRaw, source);
  const grainSectors = checkGrain(buf.readBigUInt64LE(HDR.grainSize), source);
  const gtesPerGt = buf.readUInt32LE(HDR.numGTEsPerGT);
  if (gtesPerGt === 0 || gtesPerGt > GTES_PER_GT) {
    corrupt(source, 'numGTEsPerGT', `numGTEsPerGT ${gtesPerGt} (the spec fixes 512)`, gtesPerGt);
  }
  if (gtesPerGt !== GTES_PER_GT) {
    throw new ImageUnsupportedError(`${source}: numGTEsPerGT ${gtesPerGt} is not the spec's 512`, {
      format: 'vmdk',
      field: 'numGTEsPerGT',
      value: gtesPerGt,
    });
  }
  const gdRaw = buf.readBigUInt64LE(HDR.gdOffset);
  const gdAtEnd = gdRaw === GD_AT_END;
  if (gdAtEnd && (options.footer || !markers)) {
    corrupt(source, 'gdOffset', 'grain directory "at end" outside a stream-optimized header');
  }
  const gdEntries = gdEntriesFor(capacitySectors, grainSectors, gtesPerGt, source);
  let gdOffset = 0;
  if (!gdAtEnd && capacitySectors > 0) {
    if (gdRaw === 0n) corrupt(source, 'gdOffset', 'grain directory offset is 0');
    gdOffset = sectorsToBytes(gdRaw, fileSize, source, 'gdOffset');
    if (gdOffset + gdEntries * GTE_BYTES > fileSize) {
      throw new ImageTruncatedError(`${source}: grain directory extends past the end of the file`, {
        format: 'vmdk',
        field: 'gdOffset',
        size: fileSize,
      });
    }
    if (flags & FLAG_RGD) {
      const rgd = sectorsToBytes(buf.readBigUInt64LE(HDR.rgdOffset), fileSize, source, 'rgdOffset');
      if (rgd === 0 || rgd + gdEntries * GTE_BYTES > fileSize) {
        corrupt(source, 'rgdOffset', 'redundant grain directory offset is 0 or past the end of the file');
      }
    }
  }
  const overHeadRaw = buf.readBigUInt64LE(HDR.overHead);
  // QEMU: "File truncated, expecting at least <overHead> bytes".
  const overHeadSectors = sectorsToBytes(overHeadRaw, fileSize, source, 'overHead') / SECTOR;
  return Object.freeze({
    kind: 'vmdk4',
    version,
    flags,
    capacitySectors,
    grainSectors,
    gtesPerGt,
    gdOffset,
    gdEntries,
    compressed,
    markers,
    zeroGrain: (flags & FLAG_ZERO_GRAIN) !== 0,
    descriptorOffset,
    descriptorBytes,
    gdAtEnd,
    overHeadSectors,
    uncleanShutdown: buf[HDR.uncleanShutdown] !== 0,
  });
}

/** Parses an ESX "COWD" sparse header (vmfsSparse deltas), as QEMU's VMDK3 reader does. */
export function parseCowdHeader(buf: Buffer, fileSize: number, source: string): SparseGeometry {
  if (buf.length < COWD.end || !isCowdMagic(buf)) corrupt(source, 'magic', 'not a COWD sparse extent');
  const version = buf.readUInt32LE(COWD.version);
  if (version !== 1) {
    throw new ImageUnsupportedError(`${source}: COWD version ${version} is not supported`, {
      format: 'vmdk',
      field: 'version',
      value: version,
    });
  }
  const capacitySectors = checkCapacity(BigInt(buf.readUInt32LE(COWD.capacity)), source);
  const grainSectors = checkGrain(BigInt(buf.readUInt32LE(COWD.grainSize)), source);
  const gdEntries = buf.readUInt32LE(COWD.numGDEntries);
  const needed = gdEntriesFor(capacitySectors, grainSectors, COWD_GTES_PER_GT, source);
  if (gdEntries < needed) {
    corrupt(source, 'numGDEntries', `grain directory has ${gdEntries} entries, the capacity needs ${needed}`);
  }
  const gdOffset = sectorsToBytes(BigInt(buf.readUInt32LE(COWD.gdOffset)), fileSize, source, 'gdOffset');
  if (gdOffset === 0 || gdOffset + needed * GTE_BYTES > fileSize) {
    corrupt(source, 'gdOffset', 'grain directory offset is 0 or past the end of the file');
  }
  return Object.freeze({
    kind: 'cowd',
    version,
    flags: buf.readUInt32LE(COWD.flags),
    capacitySectors,
    grainSectors,
    gtesPerGt: COWD_GTES_PER_GT,
    gdOffset,
    gdEntries: needed,
    compressed: false,
    markers: false,
    zeroGrain: false,
  });
}

export interface Marker {
  /** Grain markers: the lba; metadata markers: sectors of metadata that follow. */
  readonly value: bigint;
  readonly size: number;
  /** Only meaningful when size is 0 (a metadata marker). */
  readonly type: number;
}

export function parseMarker(buf: Buffer, at = 0): Marker {
  return {
    value: buf.readBigUInt64LE(at),
    size: buf.readUInt32LE(at + 8),
    type: buf.length >= at + 16 ? buf.readUInt32LE(at + 12) : -1,
  };
}

/** Sparse header flags in words, for `info`. */
export function describeFlags(flags: number): string {
  const names: Array<[number, string]> = [
    [FLAG_NL_DETECT, 'newline-check'],
    [FLAG_RGD, 'redundant-gd'],
    [FLAG_ZERO_GRAIN, 'zeroed-grain'],
    [FLAG_COMPRESSED, 'compressed'],
    [FLAG_MARKERS, 'markers'],
  ];
  return names
    .filter(([bit]) => flags & bit)
    .map(([, n]) => n)
    .join(',');
}
