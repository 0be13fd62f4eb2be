/**
 * The image store's public surface (docs/store.md): repositories, back ends, master keys,
 * writing, reading, listing, deleting, GC and check of server images.
 */
export type { Backend, ObjectInfo, ByteRange } from './backend/backend.js';
export { listAll } from './backend/backend.js';
export { LocalBackend } from './backend/local/local.js';
export { MemoryBackend, type BackendOp, type MemoryFaults } from './backend/memory/memory.js';
export type { MasterKey, SlotSecret, ScryptParams } from './crypto/master.js';
export { RawMasterKey, PassphraseMasterKey, parseMasterKey, formatMasterKey } from './crypto/master.js';
export type { KeySlot } from './crypto/slots.js';
export {
  findMasterKey,
  requireMasterKey,
  createKeyFile,
  KEY_ENV,
  type KeySourceOptions,
} from './crypto/sources.js';
export { Repository, type InitOptions, type OpenOptions } from './repo/repository.js';
export type { RepoConfig } from './repo/config.js';
export * as storeLayout from './layout.js';
export type { ServerImage, DiskImage, DiskStats } from './manifest/record.js';
export { isImageId, newImageId } from './manifest/record.js';
export { CHECKSUM_ALGORITHM, TreeChecksum } from './manifest/checksum.js';
export { treeShape, type TreeShape } from './manifest/tree.js';
export { writeImage, type WriteImageOptions } from './write/image-writer.js';
export {
  openImageDisk,
  exportImage,
  type ImageView,
  type ExportResult,
  type OpenImageOptions,
} from './read/open.js';
export type { ChunkIndex } from './index/chunk-index.js';
export { ImageLayer } from './read/image-layer.js';
export {
  getImage,
  listImages,
  deleteImage,
  applyRetention,
  listIncomplete,
  type IncompleteWrite,
} from './images/images.js';
export { RepoLock, listLocks, removeStaleLocks, type LockInfo, type LockKind } from './lock/lock.js';
export { collectGarbage, type GcOptions, type GcReport } from './gc/gc.js';
export { checkRepository, type CheckIssue, type CheckOptions, type CheckReport } from './check/check.js';
export type { S3BackendOptions } from './backend/s3/s3.js';
export { parseS3Url, createS3Backend } from './backend/s3/url.js';
