/**
 * qcow2 on-disk layout: field offsets, masks and the qcow2-specific limits.
 *
 * Spec: QEMU docs/interop/qcow2.txt
 *   https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.txt
 * Behaviour reference (what a real reader accepts and how it reads): QEMU block/qcow2.c
 * (open and header checks), block/qcow2-cluster.c (L1/L2 mapping), block/qcow2.h
 * (masks, limits), block/qcow2-threads.c (zlib/zstd decompression).
 *
 * Everything is big-endian. The file is cut into clusters of 2^cluster_bits bytes:
 *
 *   cluster 0        header (72 bytes in v2, header_length >= 104 in v3)
 *                    header extensions: [type u32][len u32][data, padded to 8] … [0][0]
 *                    backing file name (not NUL terminated), still inside cluster 0
 *   anywhere, aligned:
 *     L1 table       l1_size u64 entries, contiguous: bits 9-55 = L2 table offset, 63 = COPIED
 *     L2 tables      one cluster each; cluster_size/8 u64 entries (cluster_size/16 u128
 *                    entries with extended L2), one per guest cluster
 *     refcount table refcount_table_clusters clusters of u64 refcount block offsets
 *     refcount blocks one cluster each, 2^refcount_order-bit counts per host cluster
 *     data clusters  guest data (or in an external data file, at the guest offset)
 *     compressed     byte-granular runs of zlib/zstd data, several per host cluster
 *
 *   L2 entry (64 bits):  63 COPIED | 62 COMPRESSED | 61..0 cluster descriptor
 *     standard:   bit 0 ZERO (v3) | bits 9-55 host cluster offset (0 = unallocated)
 *     compressed: x = 62 - (cluster_bits - 8); bits 0..x-1 host byte offset,
 *                 bits x..61 additional 512-byte sectors beyond the first
 *   extended L2: the entry above, then a u64 bitmap: bits 0-31 subcluster allocated,
 *                bits 32-63 subcluster reads as zeros (32 subclusters per cluster)
 *
 * Readers here never load 64-bit table entries as bigint: an entry is read as two u32
 * halves (hi, lo) and the offset is rebuilt only after checking that it is below 2^53.
 */

export const MAGIC = 0x514649fb; // "QFI\xfb"

/** Header field offsets (spec "Header"). */
export const HDR = {
  magic: 0, // u32
  version: 4, // u32
  backingFileOffset: 8, // u64
  backingFileSize: 16, // u32
  clusterBits: 20, // u32
  size: 24, // u64, virtual size in bytes
  cryptMethod: 32, // u32
  l1Size: 36, // u32, entries
  l1TableOffset: 40, // u64
  refcountTableOffset: 48, // u64
  refcountTableClusters: 56, // u32
  nbSnapshots: 60, // u32
  snapshotsOffset: 64, // u64
  // version 3 and later
  incompatibleFeatures: 72, // u64
  compatibleFeatures: 80, // u64
  autoclearFeatures: 88, // u64
  refcountOrder: 96, // u32
  headerLength: 100, // u32
  compressionType: 104, // u8, present when header_length > 104
} as const;

export const V2_HEADER_LENGTH = 72;
export const V3_MIN_HEADER_LENGTH = 104;
/** The header QEMU (and Ferry's writer) emits: through compression_type, padded to 8. */
export const V3_HEADER_LENGTH = 112;

export const CRYPT_NONE = 0;
export const CRYPT_NAMES: Readonly<Record<number, string>> = { 1: 'AES', 2: 'LUKS' };

/** Incompatible feature bits (spec: an unknown one must make the open fail). */
export const INCOMPAT = {
  dirty: 0,
  corrupt: 1,
  dataFile: 2,
  compressionType: 3,
  extendedL2: 4,
} as const;
export const INCOMPAT_KNOWN_MASK = 0b11111n;
/** Compatible bit 0: lazy refcounts (only matters to writers of this image). */
export const COMPAT_LAZY_REFCOUNTS = 1n;
/** Autoclear bits: 0 bitmaps are consistent, 1 the external data file is a raw image. */
export const AUTOCLEAR_BITMAPS = 1n;
export const AUTOCLEAR_DATA_FILE_RAW = 2n;

export const COMPRESSION_ZLIB = 0;
export const COMPRESSION_ZSTD = 1;

/** Header extension types (spec "Header extensions"). */
export const EXT = {
  end: 0x00000000,
  backingFormat: 0xe2792aca,
  featureNameTable: 0x6803f857,
  bitmaps: 0x23852875,
  fullDiskEncryption: 0x0537be77,
  dataFile: 0x44415441,
} as const;
export const EXT_HEADER_BYTES = 8;
/** Feature name table entry: u8 type, u8 bit, 46 bytes of name. */
export const FEATURE_NAME_ENTRY_BYTES = 48;
export const FEATURE_NAME_BYTES = 46;

// ── Table entries, as (hi, lo) u32 halves of the big-endian u64 ─────────────────────
/** L1/L2 bit 63 (hi bit 31): refcount is exactly one. */
export const HI_COPIED = 0x80000000;
/** L2 bit 62 (hi bit 30): compressed cluster. */
export const HI_COMPRESSED = 0x40000000;
/** Bits 32-55 of an L1/L2 standard offset (bits 9-55 overall). */
export const HI_OFFSET_MASK = 0x00ffffff;
/** Bits 9-31 of an L1/L2 standard offset. */
export const LO_OFFSET_MASK = 0xfffffe00;
/** L2 standard descriptor bit 0: the cluster reads as zeros. */
export const LO_ZERO_FLAG = 1;
/** hi halves above this put the offset at or past 2^53: never inside a file. */
export const HI_SAFE_LIMIT = 0x1fffff;

export const L1_ENTRY_BYTES = 8;
export const L2_ENTRY_BYTES = 8;
export const L2_EXTENDED_ENTRY_BYTES = 16;
export const SUBCLUSTERS_PER_CLUSTER = 32;
export const COMPRESSED_SECTOR = 512;
export const SECTOR = 512;

// ── Limits (each mirrors QEMU, block/qcow2.h, so an image QEMU opens opens here) ────
/** cluster_bits 9 (512 B): the spec's minimum. */
export const MIN_CLUSTER_BITS = 9;
/** cluster_bits 21 (2 MiB): QEMU's implementation limit; larger sizes are refused by QEMU too. */
export const MAX_CLUSTER_BITS = 21;
/** Extended L2 needs 16 KiB clusters (spec), so subclusters are at least 512 bytes. */
export const MIN_EXTENDED_L2_CLUSTER_BITS = 14;
/** Largest L1 table: 32 MiB (QCOW_MAX_L1_SIZE), the engine-wide table cap too. */
export const MAX_L1_BYTES = 32 * 1024 * 1024;
/** Largest refcount table: 8 MiB (QCOW_MAX_REFTABLE_SIZE). Only bounds-checked here. */
export const MAX_REFCOUNT_TABLE_BYTES = 8 * 1024 * 1024;
/** Backing file name: at most 1023 bytes (spec; QEMU's buffer is 1024 with the NUL). */
export const MAX_BACKING_NAME_BYTES = 1023;
/** Backing format name: QEMU keeps it in a 16-byte buffer, so at most 15 bytes. */
export const MAX_BACKING_FORMAT_BYTES = 15;
/** Snapshots: QEMU's QCOW_MAX_SNAPSHOTS; a snapshot table entry is at least 40 bytes. */
export const MAX_SNAPSHOTS = 65536;
export const MIN_SNAPSHOT_ENTRY_BYTES = 40;
/** Largest refcount_order: 6 (64-bit refcounts), spec. */
export const MAX_REFCOUNT_ORDER = 6;
/**
 * zstd window accepted when inflating one cluster: 2^23 (8 MiB). A cluster is at most 2 MiB,
 * so legitimate frames need a 2^21 window; the margin accepts frames made by other encoders
 * at high levels, and the cap stops a forged frame header from making zstd allocate 2 GiB.
 */
export const ZSTD_WINDOW_LOG_MAX = 23;

/** Backing format names as QEMU spells them -> Ferry's format names. */
export const BACKING_FORMATS: Readonly<Record<string, 'raw' | 'qcow2' | 'vmdk' | 'vhd' | 'vhdx'>> = {
  raw: 'raw',
  qcow2: 'qcow2',
  vmdk: 'vmdk',
  vpc: 'vhd',
  vhdx: 'vhdx',
};
