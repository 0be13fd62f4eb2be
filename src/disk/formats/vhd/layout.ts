/**
 * VHD (Microsoft Virtual Hard Disk, QEMU's "vpc"): on-disk layout, constants and limits.
 *
 * Spec: Microsoft "Virtual Hard Disk Image Format Specification" v1.0 (October 2006),
 *   https://www.microsoft.com/en-us/download/details.aspx?id=23850
 * Behaviour reference: QEMU 7.2 block/vpc.c (virtual size rules, checksum and BAT checks).
 * Every integer is big-endian.
 *
 * ```
 * fixed:         [ disk data (virtual size bytes) ........................ ][ footer 512 ]
 *
 * dynamic /      [ footer copy 512 ][ dynamic header 1024 ][ BAT 4 × entries ][ pad ]
 * differencing:  [ block: sector bitmap (rounded to 512) | data (block size) ] …
 *                [ parent locator data (differencing: anywhere, pointed to) ] …
 *                [ footer 512 ]
 *
 * footer (512):           0 cookie "conectix"     8 features        12 file format version
 *                        16 data offset (u64)     24 timestamp      28 creator app (4 chars)
 *                        32 creator version       36 creator host OS
 *                        40 original size (u64)   48 current size (u64)
 *                        56 cylinders (u16) 58 heads (u8) 59 sectors/track (u8)
 *                        60 disk type             64 checksum       68 unique id (16)
 *                        84 saved state (u8)      85 reserved
 * dynamic header (1024):  0 cookie "cxsparse"     8 data offset (u64, unused)
 *                        16 table offset (u64)    24 header version 28 max table entries
 *                        32 block size            36 checksum       40 parent unique id (16)
 *                        56 parent timestamp      60 reserved       64 parent name (512, UTF-16BE)
 *                       576 parent locators: 8 × { platform code, data space, data length,
 *                                                  reserved, data offset (u64) }
 * BAT entry (u32):        sector number of the block's bitmap; 0xFFFFFFFF = not allocated.
 * sector bitmap:          one bit per sector of the block, most significant bit first;
 *                         set = the sector is stored in this file.
 * ```
 *
 * Checksums (footer and dynamic header) are the ones' complement of the byte sum of the
 * structure with its checksum field taken as zero.
 */
import { UNITS } from '../../limits.js';

export const SECTOR = 512;
export const FOOTER_SIZE = 512;
export const DYN_HEADER_SIZE = 1024;

export const FOOTER_COOKIE = 'conectix';
export const DYN_HEADER_COOKIE = 'cxsparse';

/** Footer field offsets. */
export const F = {
  cookie: 0,
  features: 8,
  version: 12,
  dataOffset: 16,
  timestamp: 24,
  creatorApp: 28,
  creatorVersion: 32,
  creatorOs: 36,
  originalSize: 40,
  currentSize: 48,
  cylinders: 56,
  heads: 58,
  sectorsPerTrack: 59,
  diskType: 60,
  checksum: 64,
  uniqueId: 68,
  savedState: 84,
} as const;

/** Dynamic header field offsets. */
export const H = {
  cookie: 0,
  dataOffset: 8,
  tableOffset: 16,
  version: 24,
  maxTableEntries: 28,
  blockSize: 32,
  checksum: 36,
  parentId: 40,
  parentTimestamp: 56,
  parentName: 64,
  parentNameBytes: 512,
  locators: 576,
  locatorSize: 24,
  locatorCount: 8,
} as const;

export const DISK_TYPE = { fixed: 2, dynamic: 3, differencing: 4 } as const;
export type DiskTypeName = keyof typeof DISK_TYPE;

/** Features bit 1 is "reserved, must be set"; bit 0 marks a temporary disk. */
export const FEATURE_TEMPORARY = 0x1;
export const FEATURE_RESERVED = 0x2;

/** File format version and dynamic header version: major 1 (upper 16 bits) is the only one. */
export const FORMAT_VERSION = 0x0001_0000;

export const BAT_UNALLOCATED = 0xffff_ffff;

/** Parent locator platform codes (spec, "Parent Locator Entries"). */
export const PLATFORM = {
  none: 0,
  /** Deprecated Windows relative path (Virtual PC). */
  Wi2r: 0x5769_3272,
  /** Deprecated Windows absolute path (Virtual PC). */
  Wi2k: 0x5769_326b,
  /** Windows relative path, UTF-16 (little-endian in practice: Hyper-V, VirtualBox, libvhd). */
  W2ru: 0x5732_7275,
  /** Windows absolute path, UTF-16 (little-endian in practice). */
  W2ku: 0x5732_6b75,
  /** Mac OS alias record: an opaque blob, not a path. */
  Mac: 0x4d61_6320,
  /** Mac OS X file URL, UTF-8 (RFC 2396). */
  MacX: 0x4d61_6358,
} as const;

/**
 * Creator applications whose images QEMU sizes by the footer's current_size rather than by
 * the CHS geometry (block/vpc.c, vpc_open): Hyper-V ("win "), QEMU with force_size ("qem2"),
 * Disk2vhd ("d2v "), XenServer ("tap\0") and XenConverter ("CTXS"). Everything else
 * ("vpc ", "qemu", VirtualBox "vbox", …) is sized by cylinders × heads × sectors.
 */
export const CURRENT_SIZE_CREATORS: readonly string[] = ['win ', 'qem2', 'd2v ', 'CTXS', 'tap\0'];

/** The largest CHS geometry, 65535 × 16 × 255: QEMU then uses current_size whatever the creator. */
export const MAX_CHS_SECTORS = 65535 * 16 * 255;

// ── Limits (each justified) ──────────────────────────────────────────────────────────

/**
 * Largest virtual disk: 0xFF000000 sectors = 2040 GiB, the spec's maximum for VHD and the
 * exact cap QEMU applies (VHD_MAX_SECTORS in block/vpc.c); larger disks need VHDX.
 */
export const MAX_VIRTUAL_SECTORS = 0xff00_0000;
export const MAX_VIRTUAL_BYTES = MAX_VIRTUAL_SECTORS * SECTOR;

/**
 * Smallest block size: 4 KiB. QEMU accepts any power of two from 512 but sizes the sector
 * bitmap as (block_size / 4096) rounded up to 512, which is 0 below 4 KiB (the spec says
 * 512): such images read differently in QEMU and in every other tool, and no producer
 * writes them. Refused as unsupported.
 */
export const MIN_BLOCK_SIZE = 4 * UNITS.KiB;

/**
 * Largest block size: 256 MiB. Every known producer (Virtual PC, Hyper-V, QEMU, Xen,
 * VirtualBox) uses 2 MiB, or 512 KiB for some differencing disks; 128× that is ample
 * headroom while keeping one block's bitmap at 64 KiB. QEMU accepts up to 2 GiB.
 */
export const MAX_BLOCK_SIZE = 256 * UNITS.MiB;

/**
 * Largest parent locator payload read: 64 KiB, a Windows long path (32767 UTF-16 units)
 * with room to spare. Real locators are a few hundred bytes.
 */
export const MAX_LOCATOR_BYTES = 64 * UNITS.KiB;

/** Default block size written, and the one Hyper-V and QEMU use: 2 MiB. */
export const DEFAULT_BLOCK_SIZE = 2 * UNITS.MiB;

/** Fixed VHDs are written with a virtual size rounded up to this (Azure requires it). */
export const FIXED_ALIGNMENT = UNITS.MiB;

/** Bytes of sector bitmap in front of each block: one bit per sector, rounded up to 512. */
export function bitmapBytes(blockSize: number): number {
  return Math.ceil(blockSize / SECTOR / 8 / SECTOR) * SECTOR;
}
