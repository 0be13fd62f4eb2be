/**
 * qcow2 header: the first cluster's bytes -> a frozen, fully validated Qcow2Header.
 *
 * The checks follow QEMU's qcow2_do_open() (block/qcow2.c), so an image QEMU refuses is
 * refused here with the matching kind (QEMU's -ENOTSUP -> unsupported, -EINVAL ->
 * corrupt, -EFBIG -> too large), plus the bounds QEMU leaves to its zero-filling reads
 * (every table must lie inside the file, nothing may overlap the header cluster).
 * 64-bit fields stay bigint until checked against a limit, then become numbers.
 */
import { MAX_VIRTUAL_SIZE } from '../../limits.js';
import type { FormatName } from '../../layer.js';
import { corrupt, tooLarge, unsupported } from './errors.js';
import { bitList, checkTable, need } from './fields.js';
import { parseExtensions, type FeatureName } from './extensions.js';
import {
  AUTOCLEAR_BITMAPS,
  AUTOCLEAR_DATA_FILE_RAW,
  BACKING_FORMATS,
  COMPAT_LAZY_REFCOUNTS,
  COMPRESSION_ZLIB,
  COMPRESSION_ZSTD,
  CRYPT_NAMES,
  CRYPT_NONE,
  HDR,
  INCOMPAT,
  INCOMPAT_KNOWN_MASK,
  L1_ENTRY_BYTES,
  L2_ENTRY_BYTES,
  L2_EXTENDED_ENTRY_BYTES,
  MAGIC,
  MAX_BACKING_NAME_BYTES,
  MAX_CLUSTER_BITS,
  MAX_L1_BYTES,
  MAX_REFCOUNT_ORDER,
  MAX_REFCOUNT_TABLE_BYTES,
  MAX_SNAPSHOTS,
  MIN_CLUSTER_BITS,
  MIN_EXTENDED_L2_CLUSTER_BITS,
  MIN_SNAPSHOT_ENTRY_BYTES,
  SECTOR,
  V2_HEADER_LENGTH,
  V3_MIN_HEADER_LENGTH,
} from './layout.js';

export interface Qcow2Header {
  readonly version: 2 | 3;
  readonly clusterBits: number;
  readonly clusterSize: number;
  /** The header's size field, in bytes. */
  readonly size: number;
  /** What QEMU exposes: the size rounded down to whole sectors. */
  readonly virtualSize: number;
  readonly headerLength: number;
  readonly l1Size: number;
  readonly l1Offset: number;
  /** L1 entries that map the virtual disk (the rest may hold VM state). */
  readonly l1Used: number;
  readonly l2Entries: number;
  readonly l2EntryBytes: number;
  readonly refcountOrder: number;
  readonly refcountTableOffset: number;
  readonly refcountTableBytes: number;
  readonly nbSnapshots: number;
  readonly snapshotsOffset: number;
  readonly incompatible: bigint;
  readonly compatible: bigint;
  readonly autoclear: bigint;
  readonly dirty: boolean;
  readonly corrupt: boolean;
  readonly extendedL2: boolean;
  readonly lazyRefcounts: boolean;
  readonly compressionType: typeof COMPRESSION_ZLIB | typeof COMPRESSION_ZSTD;
  readonly backingFile?: string;
  /** The backing format as stored (QEMU driver name). */
  readonly backingFormatName?: string;
  readonly backingFormat?: FormatName;
  readonly dataFile?: string;
  readonly dataFileRaw: boolean;
  readonly bitmaps: boolean;
  readonly featureNames: readonly FeatureName[];
}

/** Bytes needed before the cluster size is known (the v3 fixed header). */
export const HEADER_PROBE_BYTES = V3_MIN_HEADER_LENGTH;

/** cluster_bits from the fixed header, for the caller to read the whole first cluster. */
export function peekClusterBits(buf: Buffer, file: string): number {
  need(buf, HDR.clusterBits + 4, file);
  const bits = buf.readUInt32BE(HDR.clusterBits);
  return bits >= MIN_CLUSTER_BITS && bits <= MAX_CLUSTER_BITS ? bits : MIN_CLUSTER_BITS;
}

/** `cluster0`: the first cluster of the file (the whole file if it is shorter). */
export function parseHeader(cluster0: Buffer, fileSize: number, file: string): Qcow2Header {
  need(cluster0, V2_HEADER_LENGTH, file);
  const magic = cluster0.readUInt32BE(HDR.magic);
  if (magic !== MAGIC) throw corrupt(file, 'magic', 'bad magic (not a qcow2 image)', magic);
  const version = cluster0.readUInt32BE(HDR.version);
  if (version !== 2 && version !== 3) {
    throw unsupported(file, 'version', `version ${version} (only 2 and 3 exist)`, version);
  }
  const clusterBits = cluster0.readUInt32BE(HDR.clusterBits);
  if (clusterBits < MIN_CLUSTER_BITS) {
    throw corrupt(file, 'cluster_bits', `cluster_bits ${clusterBits} is below the minimum 9`, clusterBits);
  }
  if (clusterBits > MAX_CLUSTER_BITS) {
    throw unsupported(file, 'cluster_bits', `cluster size 2^${clusterBits} exceeds 2 MiB`, clusterBits);
  }
  const cs = 2 ** clusterBits;

  let headerLength = V2_HEADER_LENGTH;
  let incompatible = 0n;
  let compatible = 0n;
  let autoclear = 0n;
  let refcountOrder = 4;
  if (version === 3) {
    need(cluster0, V3_MIN_HEADER_LENGTH, file);
    incompatible = cluster0.readBigUInt64BE(HDR.incompatibleFeatures);
    compatible = cluster0.readBigUInt64BE(HDR.compatibleFeatures);
    autoclear = cluster0.readBigUInt64BE(HDR.autoclearFeatures);
    refcountOrder = cluster0.readUInt32BE(HDR.refcountOrder);
    headerLength = cluster0.readUInt32BE(HDR.headerLength);
    if (headerLength < V3_MIN_HEADER_LENGTH) {
      throw corrupt(file, 'header_length', `header_length ${headerLength} is below 104`, headerLength);
    }
  }
  if (headerLength > cs) {
    throw corrupt(
      file,
      'header_length',
      `header_length ${headerLength} exceeds the cluster size`,
      headerLength,
    );
  }
  need(cluster0, headerLength, file);
  const backingOffset = cluster0.readBigUInt64BE(HDR.backingFileOffset);
  if (backingOffset > BigInt(cs)) {
    throw corrupt(
      file,
      'backing_file_offset',
      'backing file name is outside the first cluster',
      backingOffset,
    );
  }
  const extEnd = backingOffset !== 0n ? Number(backingOffset) : cs;
  const ext = parseExtensions(cluster0, headerLength, extEnd, file);

  const unknownBits = incompatible & ~INCOMPAT_KNOWN_MASK;
  if (unknownBits !== 0n) {
    const bits = bitList(unknownBits);
    const named = bits.map((b) => {
      const f = ext.featureNames.find((n) => n.type === 0 && n.bit === b);
      return f ? `${b} (${f.name})` : `${b}`;
    });
    throw unsupported(
      file,
      'incompatible_features',
      `unknown incompatible feature bits ${named.join(', ')}`,
      incompatible,
      {
        bits: bits.join(','),
      },
    );
  }
  const has = (bit: number) => (incompatible & (1n << BigInt(bit))) !== 0n;

  if (refcountOrder > MAX_REFCOUNT_ORDER) {
    throw corrupt(file, 'refcount_order', `refcount_order ${refcountOrder} exceeds 6`, refcountOrder);
  }
  const crypt = cluster0.readUInt32BE(HDR.cryptMethod);
  if (crypt !== CRYPT_NONE) {
    const what = CRYPT_NAMES[crypt] ?? `method ${crypt}`;
    throw unsupported(
      file,
      'crypt_method',
      `image is encrypted (${what}); Ferry does not read encrypted images`,
      crypt,
    );
  }
  if (ext.encryptionHeader) {
    throw corrupt(file, 'header_extension', 'full disk encryption header in an unencrypted image', 'FDE');
  }

  let compressionType: number = COMPRESSION_ZLIB;
  if (headerLength > HDR.compressionType) compressionType = cluster0[HDR.compressionType] as number;
  if (compressionType !== COMPRESSION_ZLIB && compressionType !== COMPRESSION_ZSTD) {
    throw unsupported(
      file,
      'compression_type',
      `unknown compression type ${compressionType}`,
      compressionType,
    );
  }
  if ((compressionType !== COMPRESSION_ZLIB) !== has(INCOMPAT.compressionType)) {
    throw corrupt(
      file,
      'compression_type',
      'compression type and the "compression type" incompatible bit disagree',
      compressionType,
    );
  }

  const extendedL2 = has(INCOMPAT.extendedL2);
  if (extendedL2 && clusterBits < MIN_EXTENDED_L2_CLUSTER_BITS) {
    throw corrupt(file, 'cluster_bits', 'extended L2 entries need clusters of at least 16 KiB', clusterBits);
  }
  const hasDataFile = has(INCOMPAT.dataFile);
  const dataFileRaw = (autoclear & AUTOCLEAR_DATA_FILE_RAW) !== 0n;
  if (dataFileRaw && !hasDataFile) {
    throw corrupt(
      file,
      'autoclear_features',
      '"raw external data" is set without an external data file',
      autoclear,
    );
  }
  if (hasDataFile && ext.dataFile === undefined) {
    throw unsupported(file, 'data_file', 'uses an external data file but does not name it', incompatible);
  }

  // ── Sizes and tables ──────────────────────────────────────────────────────────────
  const sizeBig = cluster0.readBigUInt64BE(HDR.size);
  if (sizeBig > BigInt(MAX_VIRTUAL_SIZE)) {
    throw tooLarge(file, 'size', `virtual size ${sizeBig} exceeds the limit`, sizeBig, MAX_VIRTUAL_SIZE);
  }
  const size = Number(sizeBig);
  const l2EntryBytes = extendedL2 ? L2_EXTENDED_ENTRY_BYTES : L2_ENTRY_BYTES;
  const l2Entries = cs / l2EntryBytes;
  const l1Used = Math.ceil(size / (cs * l2Entries));

  const l1Size = cluster0.readUInt32BE(HDR.l1Size);
  if (l1Size * L1_ENTRY_BYTES > MAX_L1_BYTES) {
    throw tooLarge(file, 'l1_size', `L1 table of ${l1Size} entries exceeds 32 MiB`, l1Size, MAX_L1_BYTES / 8);
  }
  if (l1Used * L1_ENTRY_BYTES > MAX_L1_BYTES) {
    throw tooLarge(
      file,
      'size',
      `virtual size ${size} needs an L1 table over 32 MiB`,
      size,
      MAX_L1_BYTES / 8,
    );
  }
  if (l1Size < l1Used) {
    throw corrupt(file, 'l1_size', `L1 table of ${l1Size} entries is too small for ${size} bytes`, l1Size, {
      needed: l1Used,
    });
  }
  const l1Offset = checkTable(
    cluster0,
    HDR.l1TableOffset,
    l1Size * L1_ENTRY_BYTES,
    cs,
    fileSize,
    file,
    'l1_table_offset',
    'L1 table',
  );

  const rtClusters = cluster0.readUInt32BE(HDR.refcountTableClusters);
  const refcountTableBytes = rtClusters * cs;
  if (refcountTableBytes > MAX_REFCOUNT_TABLE_BYTES) {
    throw tooLarge(
      file,
      'refcount_table_clusters',
      'refcount table exceeds 8 MiB',
      rtClusters,
      MAX_REFCOUNT_TABLE_BYTES / cs,
    );
  }
  const refcountTableOffset = checkTable(
    cluster0,
    HDR.refcountTableOffset,
    refcountTableBytes,
    cs,
    fileSize,
    file,
    'refcount_table_offset',
    'refcount table',
  );

  const nbSnapshots = cluster0.readUInt32BE(HDR.nbSnapshots);
  if (nbSnapshots > MAX_SNAPSHOTS) {
    throw tooLarge(file, 'nb_snapshots', `${nbSnapshots} snapshots`, nbSnapshots, MAX_SNAPSHOTS);
  }
  const snapshotsOffset = checkTable(
    cluster0,
    HDR.snapshotsOffset,
    nbSnapshots * MIN_SNAPSHOT_ENTRY_BYTES,
    cs,
    fileSize,
    file,
    'snapshots_offset',
    'snapshot table',
  );

  // ── Backing file ──────────────────────────────────────────────────────────────────
  let backingFile: string | undefined;
  if (backingOffset !== 0n) {
    const at = Number(backingOffset);
    const len = cluster0.readUInt32BE(HDR.backingFileSize);
    if (len > Math.min(MAX_BACKING_NAME_BYTES, cs - at)) {
      throw corrupt(file, 'backing_file_size', `backing file name of ${len} bytes is too long`, len);
    }
    need(cluster0, at + len, file);
    // QEMU treats an empty name as "no backing file".
    if (len > 0) backingFile = cluster0.toString('utf8', at, at + len);
  }
  let backingFormat: FormatName | undefined;
  if (backingFile !== undefined && ext.backingFormat !== undefined) {
    backingFormat = BACKING_FORMATS[ext.backingFormat];
    if (!backingFormat) {
      throw unsupported(
        file,
        'backing_format',
        `backing file format "${ext.backingFormat}" is not supported`,
        ext.backingFormat,
      );
    }
  }

  return Object.freeze({
    version,
    clusterBits,
    clusterSize: cs,
    size,
    virtualSize: size - (size % SECTOR),
    headerLength,
    l1Size,
    l1Offset,
    l1Used,
    l2Entries,
    l2EntryBytes,
    refcountOrder,
    refcountTableOffset,
    refcountTableBytes,
    nbSnapshots,
    snapshotsOffset,
    incompatible,
    compatible,
    autoclear,
    dirty: has(INCOMPAT.dirty),
    corrupt: has(INCOMPAT.corrupt),
    extendedL2,
    lazyRefcounts: (compatible & COMPAT_LAZY_REFCOUNTS) !== 0n,
    compressionType: compressionType as typeof COMPRESSION_ZLIB | typeof COMPRESSION_ZSTD,
    ...(backingFile !== undefined ? { backingFile } : {}),
    ...(backingFile !== undefined && ext.backingFormat !== undefined
      ? { backingFormatName: ext.backingFormat }
      : {}),
    ...(backingFormat !== undefined ? { backingFormat } : {}),
    ...(hasDataFile && ext.dataFile !== undefined ? { dataFile: ext.dataFile } : {}),
    dataFileRaw,
    bitmaps: ext.bitmaps && (autoclear & AUTOCLEAR_BITMAPS) !== 0n,
    featureNames: ext.featureNames,
  });
}
