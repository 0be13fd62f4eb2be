/**
 * The contract between the generic engine and a format driver.
 *
 * A driver opens ONE layer of a chain from a ByteSource: it parses, validates and maps
 * that file (and files it owns, like VMDK extents or a qcow2 external data file, which it
 * opens through `OpenContext.openReference`). Backing/parent files are NOT opened by the
 * driver: it reports `info.parent` and the engine (chain.ts) opens, checks and stacks
 * them, so loop, depth and path policy live in one place.
 */
import type { ByteSource } from './io/byte-source.js';
import type { BlockSink } from './io/block-sink.js';
import type { LayerExtent } from './extent.js';

export const FORMAT_NAMES = ['raw', 'qcow2', 'vmdk', 'vhd', 'vhdx'] as const;
export type FormatName = (typeof FORMAT_NAMES)[number];

export interface ParentReference {
  /** The name exactly as stored in the image (relative path, usually). */
  readonly name: string;
  /** Format the child declares for its parent, when it declares one (qcow2 backing_fmt). */
  readonly format?: FormatName;
  /**
   * Identity the child recorded for its parent (VMDK parentCID, VHD/VHDX parent UUID);
   * the engine compares it with the parent's `info.id` and refuses a mismatch.
   */
  readonly expectedId?: string;
}

export interface LayerInfo {
  readonly format: FormatName;
  /** e.g. qcow2 "v3", vmdk "streamOptimized", vhd "dynamic". */
  readonly subformat: string;
  readonly virtualSize: number;
  /** Allocation unit of the format (cluster, grain, block); 512 when it has none. */
  readonly clusterSize: number;
  /** Bytes the layer's files occupy (file sizes, summed over extents/data files). */
  readonly fileSize: number;
  readonly parent?: ParentReference;
  /** This layer's identity as a parent (VMDK CID, VHD/VHDX unique id). */
  readonly id?: string;
  /** Extra files this layer reads (extents, data files), as named in the image. */
  readonly files: readonly string[];
  /** Things that are legal but worth telling the user (dirty flag, unknown compatible bits). */
  readonly warnings: readonly string[];
  /** Format-specific facts for `ferry image info --json` (plain data only). */
  readonly details: Readonly<Record<string, string | number | boolean>>;
}

export interface DiskLayer {
  readonly info: LayerInfo;
  /**
   * Extents of [offset, offset+length) in this layer, in order, contiguous, covering the
   * range exactly, adjacent extents of the same kind merged. The range is inside
   * [0, virtualSize). `unallocated` means "ask the parent".
   */
  map(offset: number, length: number): Promise<LayerExtent[]>;
  /**
   * Bytes of [offset, offset+length) of this layer alone: unallocated and zero ranges read
   * as zeros. The engine only calls it for ranges inside [0, virtualSize).
   */
  read(offset: number, length: number): Promise<Buffer>;
  /** Optional: `read` into all of `target` (same range rules), so buffers can be reused. */
  readInto?(offset: number, target: Buffer): Promise<void>;
  /** Closes the sources this layer opened (its own ByteSource included). */
  close(): Promise<void>;
}

export interface OpenContext {
  /**
   * Opens a file the image refers to (VMDK extent, qcow2 external data file), resolved
   * against the directory of the image under the reference policy. Throws
   * FERRY_REFERENCE_REFUSED / FERRY_REFERENCE_NOT_FOUND.
   */
  openReference(name: string, purpose: 'extent' | 'data-file'): Promise<ByteSource>;
}

/** Options a caller may pass to a writer; each driver documents what it honours. */
export interface WriterOptions {
  readonly virtualSize: number;
  readonly subformat?: string;
  /** Compress data (qcow2: zlib clusters; VMDK streamOptimized always compresses). */
  readonly compress?: boolean;
  /** Allocation unit (qcow2 cluster size, VHDX block size); driver default when absent. */
  readonly clusterSize?: number;
}

/**
 * A writer receives the disk as blocks of `blockSize` bytes in ascending order. Only blocks
 * with non-zero content are passed; everything not passed must read as zeros in the output.
 * The writer owns `data` after the call. The returned promise resolves when the writer can
 * take the next block (it may still be compressing/writing earlier ones: backpressure).
 */
export interface DiskWriter {
  readonly blockSize: number;
  /**
   * True when the writer gives every block back to `readPool` (io/buffer-pool.ts) once it
   * no longer needs it: every byte it was passed, written or skipped, released exactly
   * once. The pipeline then reuses its read buffers; otherwise the writer keeps them.
   */
  readonly releasesBlocks?: boolean;
  writeBlock(offset: number, data: Buffer): Promise<void>;
  /** Writes remaining metadata, flushes; the output is complete when it resolves. */
  finish(): Promise<void>;
}

export interface FormatDriver {
  readonly name: FormatName;
  /** Content probe: true if the source is this format. Must never throw on garbage. */
  probe(src: ByteSource): Promise<boolean>;
  open(src: ByteSource, ctx: OpenContext): Promise<DiskLayer>;
  /** Subformats this driver writes (first is the default); empty when it cannot write. */
  readonly writableSubformats: readonly string[];
  /** Whether a subformat needs a seekable sink. */
  needsSeekableSink(subformat: string): boolean;
  createWriter?(sink: BlockSink, options: WriterOptions): Promise<DiskWriter>;
}
