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
