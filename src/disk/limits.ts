/**
 * Every limit the disk engine applies to untrusted input, with the reason for its value.
 * Format drivers import these instead of writing literals, and docs/formats.md lists them.
 * Per-format caps that mirror QEMU's live next to the format (and cite QEMU).
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/**
 * Largest virtual disk Ferry opens: 64 TiB. VHDX's own maximum is 64 TiB; qcow2 and VMDK
 * allow more on paper, but no source Ferry migrates from produces larger single disks, and
 * the cap keeps every derived count (clusters, grains, blocks) far below 2^53.
 */
export const MAX_VIRTUAL_SIZE = 64 * TiB;

/**
 * Largest single read from a source: 64 MiB. Bounds one allocation whatever a corrupt
 * header claims; every legitimate metadata table that can be larger is read in pieces.
 */
export const MAX_SINGLE_READ_BYTES = 64 * MiB;

/**
 * Largest metadata table loaded whole (qcow2 L1 and refcount table, VHD BAT, VHDX BAT,
 * VMDK grain directory): 32 MiB, the same cap QEMU uses for the qcow2 L1 table
 * (QCOW_MAX_L1_SIZE in block/qcow2.h). With 64 KiB clusters it maps 2 PiB.
 */
export const MAX_METADATA_TABLE_BYTES = 32 * MiB;

/**
 * Deepest backing/parent chain: 16. Real chains from snapshots rarely exceed a handful;
 * QEMU has no hard cap but every level costs an open file and a metadata cache.
 */
export const MAX_CHAIN_DEPTH = 16;

/**
 * Most extent files one VMDK descriptor may name: 4096. twoGbMaxExtentSparse splits a
 * 8 TiB disk into 4096 files of 2 GiB; nothing legitimate needs more.
 */
export const MAX_VMDK_EXTENTS = 4096;

/** Largest text descriptor (VMDK, embedded or separate): 1 MiB; real ones are < 4 KiB. */
export const MAX_DESCRIPTOR_BYTES = 1 * MiB;

/**
 * Largest compressed unit Ferry inflates: 2 MiB of output, the largest qcow2 cluster.
 * VMDK grains are at most 1 MiB here (grainSize ≤ 2048 sectors, see vmdk/layout.ts).
 * Every inflate call passes this as its output cap.
 */
export const MAX_DECOMPRESSED_UNIT_BYTES = 2 * MiB;

/**
 * Metadata cache per open layer: 32 MiB of L2 tables / grain tables / BAT pages.
 * Memory stays flat whatever the virtual size (the 200 MiB RSS target for a 2 TiB image).
 */
export const METADATA_CACHE_BYTES = 32 * MiB;

export const UNITS = { KiB, MiB, GiB, TiB } as const;
