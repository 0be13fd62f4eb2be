/**
 * VHDX on-disk layout, constants and VHDX-specific limits.
 *
 * Spec: [MS-VHDX] "Virtual Hard Disk v2 (VHDX) File Format",
 * https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-vhdx/83e061f8-f6e2-4de1-91bd-5d518a43d477
 * QEMU's reader/writer (block/vhdx.c, block/vhdx-log.c) is the compatibility reference.
 * Every integer is little-endian; GUIDs are stored in Microsoft's mixed-endian binary form.
 *
 * ```
 *  0        64 KiB    128 KiB   192 KiB        256 KiB        320 KiB          1 MiB
 *  | file id | header 1 | header 2 | region tbl 1 | region tbl 2 |  reserved    |
 *  "vhdxfile" "head"+CRC  "head"+CRC  "regi"+CRC      "regi"+CRC
 *
 *  then, each at a 1 MiB-aligned offset, in any order (QEMU: log, BAT, metadata; Ferry's
 *  writer: log, metadata, BAT, so the metadata region sits at a fixed 2 MiB):
 *  | log (ring of 4 KiB sectors) | metadata region | BAT region | payload / sector bitmap blocks ...
 *
 *  metadata region:  | table (64 KiB): "metadata", entries {item GUID, offset, length, flags} | items |
 *  BAT:  one 64-bit entry per payload block, and after every `chunkRatio` payload entries one
 *        entry for the sector bitmap block of that chunk:
 *        [P0 P1 … P(cr-1) SB0 | Pcr … P(2cr-1) SB1 | …]
 *        entry = state (bits 0-2) | reserved (bits 3-19) | FileOffsetMB (bits 20-63)
 * ```
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;

// ── Header section ──────────────────────────────────────────────────────────────────
export const FILE_ID_SIGNATURE = 'vhdxfile';
/** Creator: up to 256 UTF-16 code units after the signature (diagnostic only). */
export const FILE_ID_CREATOR_OFFSET = 8;
export const FILE_ID_CREATOR_BYTES = 512;

export const HEADER_OFFSETS = [64 * KiB, 128 * KiB] as const;
/** The checksummed part of a header (the rest of its 64 KiB slot is reserved). */
export const HEADER_SIZE = 4 * KiB;
export const HEADER_SIGNATURE = 'head';
export const HEADER_CHECKSUM_OFFSET = 4;
export const HEADER_VERSION = 1;
export const LOG_VERSION = 0;

export const REGION_TABLE_OFFSETS = [192 * KiB, 256 * KiB] as const;
export const REGION_TABLE_SIZE = 64 * KiB;
export const REGION_SIGNATURE = 'regi';
export const REGION_CHECKSUM_OFFSET = 4;
export const REGION_HEADER_SIZE = 16;
export const REGION_ENTRY_SIZE = 32;
/** Spec 2.2.3.1: EntryCount ≤ 2047 (what fits in 64 KiB after the header). */
export const MAX_REGION_ENTRIES = 2047;
export const REGION_REQUIRED_BIT = 1;

/** Nothing but the header section lives below 1 MiB; regions and blocks are 1 MiB-aligned. */
export const HEADER_SECTION_SIZE = 1 * MiB;
export const REGION_ALIGNMENT = 1 * MiB;
/**
 * The first 192 KiB (file identifier and both headers) are never written through the
 * log (spec 2.2.2: headers are updated in place; 2.2.1: the identifier never changes).
 */
export const LOG_PROTECTED_END = 192 * KiB;

// ── Metadata region ─────────────────────────────────────────────────────────────────
export const METADATA_SIGNATURE = 'metadata';
export const METADATA_TABLE_SIZE = 64 * KiB;
export const METADATA_HEADER_SIZE = 32;
export const METADATA_ENTRY_SIZE = 32;
/** Spec 2.6.1.1: EntryCount ≤ 2047. */
export const MAX_METADATA_ENTRIES = 2047;
/** Spec 2.6.1.2: at most 1024 entries may have IsUser set. */
export const MAX_USER_METADATA_ENTRIES = 1024;
/** Spec 2.6.1.2: items live at offset ≥ 64 KiB in the region and are ≤ 1 MiB long. */
export const METADATA_ITEMS_START = 64 * KiB;
export const MAX_METADATA_ITEM_BYTES = 1 * MiB;
export const META_FLAG_IS_USER = 1;
export const META_FLAG_IS_VIRTUAL_DISK = 2;
export const META_FLAG_IS_REQUIRED = 4;

export const FILE_PARAMS_LEAVE_BLOCKS_ALLOCATED = 1;
export const FILE_PARAMS_HAS_PARENT = 2;

/** Spec 2.6.2.1: a power of two in [1 MiB, 256 MiB]. */
export const MIN_BLOCK_SIZE = 1 * MiB;
export const MAX_BLOCK_SIZE = 256 * MiB;
export const SECTOR_SIZES = [512, 4096] as const;

/** Spec 2.6.2.6.1/2: 20-byte header, then 12-byte key/value entries. */
export const PARENT_LOCATOR_HEADER_SIZE = 20;
export const PARENT_LOCATOR_ENTRY_SIZE = 12;
/**
 * Most key/value pairs in a parent locator: 64. The spec defines five keys; Hyper-V
 * writes three to five. A bound keeps a 1 MiB item of 87,000 tiny pairs from costing time.
 */
export const MAX_PARENT_LOCATOR_ENTRIES = 64;

// ── BAT ─────────────────────────────────────────────────────────────────────────────
/** Spec 2.4: one sector bitmap block (1 MiB) describes 2^23 logical sectors. */
export const SECTORS_PER_BITMAP_BLOCK = 2 ** 23;
export const SECTOR_BITMAP_BLOCK_SIZE = 1 * MiB;
export const BAT_ENTRY_SIZE = 8;

/** Payload block states (spec 2.5.1.1). */
export const PAYLOAD_NOT_PRESENT = 0;
export const PAYLOAD_UNDEFINED = 1;
export const PAYLOAD_ZERO = 2;
export const PAYLOAD_UNMAPPED = 3;
/**
 * State 5 is "reserved" in the spec but was UNMAPPED in draft v0.95; QEMU reads it as
 * zeros (PAYLOAD_BLOCK_UNMAPPED_v095), and so does Ferry. State 4 is refused.
 */
export const PAYLOAD_UNMAPPED_V095 = 5;
export const PAYLOAD_FULLY_PRESENT = 6;
export const PAYLOAD_PARTIALLY_PRESENT = 7;
/** Sector bitmap block states (spec 2.5.1.2). */
export const SB_NOT_PRESENT = 0;
export const SB_PRESENT = 6;

/** Low 32 bits of an entry: state (bits 0-2), reserved (3-19), FileOffsetMB low bits (20-31). */
export const BAT_STATE_MASK = 0x7;
export const BAT_RESERVED_MASK = 0xfffff & ~BAT_STATE_MASK;
export const BAT_OFFSET_SHIFT = 20;

// ── Log ─────────────────────────────────────────────────────────────────────────────
export const LOG_SECTOR_SIZE = 4 * KiB;
export const LOG_ENTRY_SIGNATURE = 'loge';
export const LOG_DATA_DESCRIPTOR_SIGNATURE = 'desc';
export const LOG_ZERO_DESCRIPTOR_SIGNATURE = 'zero';
export const LOG_DATA_SECTOR_SIGNATURE = 'data';
export const LOG_ENTRY_HEADER_SIZE = 64;
export const LOG_DESCRIPTOR_SIZE = 32;
export const LOG_CHECKSUM_OFFSET = 4;
/** Bytes of a logged sector kept in its descriptor instead of its data sector. */
export const LOG_LEADING_BYTES = 8;
export const LOG_TRAILING_BYTES = 4;

/**
 * Largest log Ferry replays: 32 MiB. The log is read whole and replayed in memory (the
 * file is never written), so its size bounds memory. Hyper-V and QEMU create 1 MiB logs;
 * both only ever hold a few metadata sector updates.
 */
export const MAX_LOG_BYTES = 32 * MiB;
/**
 * Most descriptors in the active log sequence: 65,536. A 1 MiB log can hold at most
 * ~32,000; a bound keeps the replay overlay (one record per descriptor) small.
 */
export const MAX_LOG_DESCRIPTORS = 65_536;

/**
 * Largest file offset any structure may claim (blocks, log targets, LastFileOffset):
 * 128 TiB, twice the largest disk (64 TiB of payload plus metadata always fits). Keeps
 * every offset a safe integer.
 */
export const MAX_FILE_OFFSET = 128 * 1024 * 1024 * MiB;

/** Largest virtual disk (spec 2.6.2.2 and QEMU's VHDX_MAX_IMAGE_SIZE): 64 TiB. */
export const MAX_VHDX_VIRTUAL_SIZE = 64 * 1024 * 1024 * MiB;

// ── Known GUIDs (string form; guid.ts converts to the binary form) ─────────────────────
export const GUID_BAT_REGION = '2dc27766-f623-4200-9d64-115e9bfd4a08';
export const GUID_METADATA_REGION = '8b7ca206-4790-4b9a-b8fe-575f050f886e';
export const GUID_FILE_PARAMETERS = 'caa16737-fa36-4d43-b3b6-33f0aa44e76b';
export const GUID_VIRTUAL_DISK_SIZE = '2fa54224-cd1b-4876-b211-5dbed83bf4b8';
/** "Virtual Disk ID" in the spec; QEMU calls it Page 83 Data (the SCSI page 83 id). */
export const GUID_PAGE83_DATA = 'beca12ab-b2e6-4523-93ef-c309e000c746';
export const GUID_LOGICAL_SECTOR_SIZE = '8141bf1d-a96f-4709-ba47-f233a8faab5f';
export const GUID_PHYSICAL_SECTOR_SIZE = 'cda348c7-445d-4471-9cc9-e9885251c556';
export const GUID_PARENT_LOCATOR = 'a8d35f2d-b30b-454d-abf7-d3d84834ab0c';
export const GUID_VHDX_PARENT_LOCATOR_TYPE = 'b04aefb7-d19e-4a81-b789-25b8e9445913';

export const FORMAT = 'vhdx';
