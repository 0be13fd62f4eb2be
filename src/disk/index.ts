/**
 * The disk engine's public surface: open any image (and its chain), map it into tagged
 * extents, read it, and copy it into any writable format.
 */
export type { ByteSource } from './io/byte-source.js';
export { MemorySource, SliceSource, checkRead } from './io/byte-source.js';
export type { BlockSink } from './io/block-sink.js';
export { MemorySink } from './io/block-sink.js';
export { FileSource } from './io/file-source.js';
export { BufferPool, readPool } from './io/buffer-pool.js';
// The NBD wire protocol's values, for the NBD client (connectors) and server (launch).
export * as nbdProtocol from './io/nbd-protocol.js';
export { FileSink, StreamSink } from './io/file-sink.js';
export { normalizeReference, type ReferencePolicy } from './io/resolver.js';
export type { Extent, ExtentKind, LayerExtent } from './extent.js';
export { EXTENT_KINDS, isStored, pushMerged } from './extent.js';
export type {
  DiskLayer,
  DiskWriter,
  FormatDriver,
  FormatName,
  LayerInfo,
  OpenContext,
  ParentReference,
  WriterOptions,
} from './layer.js';
export { FORMAT_NAMES } from './layer.js';
export { LayeredDisk, type Disk } from './chain.js';
export { openDisk, type OpenOptions } from './open.js';
export { detectFormat } from './detect.js';
export { DRIVERS, driverFor, isFormatName } from './formats/index.js';
export { copyDisk, type CopyOptions, type CopyResult } from './pipeline/copy.js';
export { checksumDisk } from './pipeline/checksum.js';
export { compareDisks, type CompareResult } from './pipeline/compare.js';
export { chunks, type Chunk } from './pipeline/chunks.js';
export type { ProgressObserver, ProgressSnapshot } from './pipeline/progress.js';
export * as limits from './limits.js';
