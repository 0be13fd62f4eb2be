/**
 * The image store's names, constants and limits (docs/store.md is the prose version).
 *
 * Object keys:
 *   config                     plaintext JSON + HMAC
 *   keys/<slot-id>             key slots (plaintext JSON, wrapped key material)
 *   data/<xx>/<pack-id>        pack files; pack-id = SHA-256 of header + trailer, xx = first two hex digits
 *   index/<index-id>           index files; index-id = SHA-256 of the (encrypted) file
 *   images/<ami-id>            committed server image records
 *   staging/<ami-id>/<name>    an image being written (params, checkpoints)
 *   locks/<lock-id>            locks
 *   gc/<gc-id>                 garbage-collection records
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const REPO_VERSION = 1;

/** Default block size: 64 KiB (justified in docs/store.md, "Choices and their reasons"). */
export const DEFAULT_BLOCK_SIZE = 64 * KiB;
/** Block sizes a repository may use: one blob ≤ 1 MiB bounds every buffer. */
export const MIN_BLOCK_SIZE = 4 * KiB;
export const MAX_BLOCK_SIZE = 1 * MiB;

/** Default tree fan-out: 2048 references of 32 bytes = 64 KiB nodes, like data blocks. */
export const DEFAULT_FANOUT = 2048;
/** Fan-out range: ≥ 16 keeps trees shallow; ≤ 16 384 keeps one node ≤ 512 KiB. */
export const MIN_FANOUT = 16;
export const MAX_FANOUT = 16384;

/** A chunk id / reference is 32 bytes; 32 zero bytes mean "all zeros". */
export const ID_BYTES = 32;

/** Target size of a pack's blobs: 16 MiB (few objects on S3, small enough to buffer). */
export const DEFAULT_PACK_BYTES = 16 * MiB;
/** Most entries a pack may hold: bounds its header to 65 536 × 42 B ≈ 2.7 MiB. */
export const MAX_PACK_ENTRIES = 65536;
/** Largest pack read whole (`check --read-data`, repack); writers stay far below it. */
export const MAX_PACK_BYTES = 1 * GiB;

/** Largest decrypted/decompressed object (index, record, checkpoint): bounds one allocation. */
export const MAX_OBJECT_BYTES = 64 * MiB;
/** Largest consolidated index file GC writes (entries), well under MAX_OBJECT_BYTES. */
export const MAX_INDEX_FILE_ENTRIES = 512 * 1024;

/** Largest virtual disk an image may describe (the disk engine's MAX_VIRTUAL_SIZE: 64 TiB). */
export const MAX_IMAGE_VIRTUAL_SIZE = 64 * 1024 * GiB;
/** Most disks in one server image (EC2 allows 128 volumes per instance at most). */
export const MAX_DISKS_PER_IMAGE = 128;

/**
 * zstd level 1: on 64 KiB blocks of the benchmark disk, levels 1 to 9 all store within
 * 0.1 % of each other (the 64 KiB window limits what a higher level can find), and level 1
 * is ~30 % faster than zstd's default 3.
 */
export const ZSTD_LEVEL = 1;

/** Locks are refreshed every minute and stale after 10 minutes without a refresh. */
export const LOCK_REFRESH_MS = 60 * 1000;
export const LOCK_STALE_MS = 10 * 60 * 1000;

export const KEY_PREFIX = {
  keys: 'keys/',
  data: 'data/',
  index: 'index/',
  images: 'images/',
  staging: 'staging/',
  locks: 'locks/',
  gc: 'gc/',
} as const;

export const CONFIG_KEY = 'config';

export function packKey(packId: string): string {
  return `data/${packId.slice(0, 2)}/${packId}`;
}

export function indexKey(indexId: string): string {
  return `index/${indexId}`;
}

export function imageKey(imageId: string): string {
  return `images/${imageId}`;
}

export function stagingPrefix(imageId: string): string {
  return `staging/${imageId}/`;
}

/** The last path element of a key. */
export function baseName(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

export const HEX64_RE = /^[0-9a-f]{64}$/;
export const IMAGE_ID_RE = /^ami-[0-9a-f]{17}$/;

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;
}
