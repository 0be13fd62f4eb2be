/**
 * VMDK on-disk layout: constants, masks and VMDK-specific limits.
 *
 * Spec: VMware "Virtual Disk Format 5.0" technical note
 *   https://www.vmware.com/support/developer/vddk/vmdk_50_technote.pdf
 * Behaviour reference (what a real reader accepts): QEMU block/vmdk.c.
 *
 * A VMDK disk is a text *descriptor* plus one or more *extents*. The descriptor is either
 * a file of its own (monolithicFlat, twoGbMaxExtent*, vmfs*, delta disks) or embedded in a
 * hosted sparse extent (monolithicSparse, streamOptimized).
 *
 * Hosted sparse extent (magic "KDMV"), as QEMU and Ferry's monolithicSparse writer lay it out:
 *
 *   sector 0            SparseExtentHeader (512 bytes, little-endian, see HDR below)
 *   descriptorOffset    embedded text descriptor, descriptorSize sectors, NUL padded
 *   rgdOffset           redundant grain directory (flag RGD), then its grain tables
 *   gdOffset            grain directory: u32 sector offsets of grain tables, 0 = none
 *                       grain tables: numGTEsPerGT (512) u32 entries each, one per grain:
 *                         0 = unallocated, 1 = zeroed grain (flag ZERO_GRAIN), else the
 *                         sector where the grain (or its grain marker) starts
 *   overHead            first grain; grains are grainSize sectors each
 *
 * Stream-optimized extent (flags COMPRESSED|MARKERS, compressAlgorithm 1 = deflate), the
 * layout VMware produces and Ferry's streamOptimized writer emits (readable from a pipe):
 *
 *   header (gdOffset = GD_AT_END) | descriptor | grain: [lba u64][size u32][zlib data]
 *   padded to a sector | … | GT marker + grain table | … | GD marker + grain directory |
 *   FOOTER marker | footer (a header copy with the real gdOffset) | EOS marker
 *
 *   The last 1536 bytes are FOOTER marker, footer and EOS (QEMU reads them at size-1536).
 *   QEMU writes streamOptimized differently: real gdOffset in the header, grain tables
 *   pre-allocated without markers, no footer; both layouts are read.
 *
 * Metadata marker (one sector): [val u64 = sectors that follow][size u32 = 0][type u32].
 *
 * ESX "COWD" sparse extent (VMFSSPARSE, vmfsSparse deltas; QEMU's VMDK3Header): after the
 * magic, u32 version, flags, capacity (sectors), grainSize (sectors), gdOffset (sectors),
 * numGDEntries, freeSector, …; grain tables have 4096 entries; no zeroed grains.
 */

export const SECTOR = 512;

/** "KDMV" read as a little-endian u32 at offset 0 (the bytes are 'K' 'D' 'M' 'V'). */
export const SPARSE_MAGIC = 0x564d444b;
/** "COWD" read as a little-endian u32 (ESX sparse extents). */
export const COWD_MAGIC = 0x44574f43;

/** SparseExtentHeader field offsets (spec "Hosted Sparse Extent Header"). */
export const HDR = {
  magic: 0, // u32
  version: 4, // u32
  flags: 8, // u32
  capacity: 12, // u64, sectors
  grainSize: 20, // u64, sectors
  descriptorOffset: 28, // u64, sectors
  descriptorSize: 36, // u64, sectors
  numGTEsPerGT: 44, // u32
  rgdOffset: 48, // u64, sectors
  gdOffset: 56, // u64, sectors
  overHead: 64, // u64, sectors
  uncleanShutdown: 72, // u8
  singleEndLineChar: 73, // u8 '\n'
  nonEndLineChar: 74, // u8 ' '
  doubleEndLineChar1: 75, // u8 '\r'
  doubleEndLineChar2: 76, // u8 '\n'
  compressAlgorithm: 77, // u16
  end: 79, // then padding to 512
} as const;

/** The four newline-detection bytes: a text-mode (FTP ASCII) transfer changes them. */
export const NL_CHECK_BYTES = [0x0a, 0x20, 0x0d, 0x0a] as const;

export const FLAG_NL_DETECT = 1 << 0;
export const FLAG_RGD = 1 << 1;
export const FLAG_ZERO_GRAIN = 1 << 2;
export const FLAG_COMPRESSED = 1 << 16;
export const FLAG_MARKERS = 1 << 17;
/** Every flag bit the spec defines; any other bit is refused as unsupported. */
export const KNOWN_FLAGS = FLAG_NL_DETECT | FLAG_RGD | FLAG_ZERO_GRAIN | FLAG_COMPRESSED | FLAG_MARKERS;

export const COMPRESSION_NONE = 0;
export const COMPRESSION_DEFLATE = 1;

/** Versions: 1 (base), 2 (zeroed-grain GTEs), 3 (CBT / streamOptimized). QEMU refuses > 3. */
export const MIN_VERSION = 1;
export const MAX_VERSION = 3;

/** gdOffset in the header of a stream: the real one is in the footer. */
export const GD_AT_END = 0xffffffffffffffffn;

/** Grain table entries: 0 = unallocated, 1 = zeroed grain (only with FLAG_ZERO_GRAIN). */
export const GTE_UNALLOCATED = 0;
export const GTE_ZEROED = 1;

/** The spec fixes 512 entries per grain table for hosted sparse extents. */
export const GTES_PER_GT = 512;
export const GTE_BYTES = 4;

/** Grain marker: lba u64 + size u32, then `size` bytes of zlib data. */
export const GRAIN_MARKER_BYTES = 12;
export const MARKER_EOS = 0;
export const MARKER_GT = 1;
export const MARKER_GD = 2;
export const MARKER_FOOTER = 3;
/** FOOTER marker + footer + EOS marker: the last three sectors of a VMware stream. */
export const FOOTER_TAIL_BYTES = 3 * SECTOR;

/** COWD (VMDK3) header, offsets from the start of the file (magic included). */
export const COWD = {
  version: 4,
  flags: 8,
  capacity: 12,
  grainSize: 16,
  gdOffset: 20,
  numGDEntries: 24,
  freeSector: 28,
  end: 44,
} as const;
/** QEMU opens COWD extents with 4096-entry grain tables (vmdk_open_vmfs_sparse). */
export const COWD_GTES_PER_GT = 4096;

// ── Limits specific to VMDK (the shared ones are in src/disk/limits.ts) ─────────────

/**
 * Largest grain: 2048 sectors (1 MiB). The spec requires a power of two and VMware and
 * QEMU write 128 sectors (64 KiB); QEMU accepts up to 1 GiB ("unrealistic", vmdk.c). 1 MiB
 * keeps every grain (and its worst-case compressed form, 2 grains) far below
 * MAX_DECOMPRESSED_UNIT_BYTES and the single-read cap.
 */
export const MAX_GRAIN_SECTORS = 2048;

/**
 * Largest compressed grain payload: two grains, QEMU's bound (vmdk_read_extent reads two
 * clusters). Incompressible data grows by a few bytes only; more is corrupt.
 */
export const MAX_COMPRESSED_FACTOR = 2;

/**
 * Sector offsets in grain directories and tables are u32, so one sparse extent file cannot
 * address more than 2^32 sectors (2 TiB) (QEMU's VMDK_EXTENT_MAX_SECTORS). The writers refuse
 * disks that would need more.
 */
export const MAX_EXTENT_FILE_SECTORS = 2 ** 32;

/**
 * Grain tables read in one I/O when they are contiguous in the file: 256 KiB (128 tables of
 * 512 entries, 4 GiB of disk at 64 KiB grains). Mapping a 2 TiB disk then takes ~500 reads.
 */
export const GT_BATCH_BYTES = 256 * 1024;

/** Descriptor sectors QEMU reserves in a hosted sparse file (desc_size = 20). */
export const EMBEDDED_DESCRIPTOR_SECTORS = 20;

/** The grain Ferry writes: 128 sectors (64 KiB), what VMware and QEMU use. */
export const DEFAULT_GRAIN_BYTES = 64 * 1024;
/** Smallest grain the writers accept: 8 sectors (4 KiB), the spec's minimum. */
export const MIN_WRITER_GRAIN_BYTES = 4096;

/** CID meaning "no parent" in parentCID. */
export const CID_NONE = 0xffffffff;
