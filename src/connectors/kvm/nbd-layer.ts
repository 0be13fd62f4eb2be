/**
 * A snapshot's disk as a disk-engine layer over QEMU's NBD export of the fleecing node.
 *
 * - `full`: the map is the export's allocation (base:allocation); everything allocated is read.
 * - `changed`: the map is what changed since the checkpoint (qemu:dirty-bitmap:<since>):
 *   clean ranges are `unallocated`, so a LayeredDisk asks the layer below (the previous
 *   image); dirty ranges take their allocation kind, except that a dirty range the
 *   export reports as a hole is `zero`, never `unallocated`: the guest discarded it, and
 *   falling through to the previous image would resurrect the old bytes.
 */
import type { DiskLayer, LayerExtent, LayerInfo } from '../../disk/index.js';
import { pushMerged } from '../../disk/index.js';
import {
  CONTEXT_BASE_ALLOCATION,
  combineDirtyAndAllocation,
  dirtyBitmapContext,
  queryExtents,
  toAllocationExtents,
  type NbdClient,
} from './nbd/index.js';

export class NbdLayer implements DiskLayer {
  readonly info: LayerInfo;
  readonly #client: NbdClient;
  readonly #dirtyContext: string | undefined;

  /** `since`: the checkpoint bitmap offered by the export (changed mode); absent: full. */
  constructor(client: NbdClient, since?: string) {
    this.#client = client;
    this.#dirtyContext = since === undefined ? undefined : dirtyBitmapContext(since);
    this.info = Object.freeze({
      format: 'raw',
      subformat: 'nbd',
      virtualSize: client.size,
      clusterSize: 512,
      fileSize: 0,
      files: Object.freeze([]),
      warnings: Object.freeze([]),
      details: Object.freeze({
        export: client.info.exportName,
        mode: since === undefined ? 'full' : 'changed',
        ...(since === undefined ? {} : { since }),
      }),
    });
  }

  get mode(): 'full' | 'changed' {
    return this.#dirtyContext === undefined ? 'full' : 'changed';
  }

  async map(offset: number, length: number): Promise<LayerExtent[]> {
    if (length === 0) return [];
    const alloc = await queryExtents(this.#client, CONTEXT_BASE_ALLOCATION, offset, length);
    if (this.#dirtyContext === undefined) return toAllocationExtents(alloc);
    const dirty = await queryExtents(this.#client, this.#dirtyContext, offset, length);
    const out: LayerExtent[] = [];
    for (const e of combineDirtyAndAllocation(dirty, alloc)) {
      const kind = e.kind === 'unchanged' ? 'unallocated' : e.kind === 'unallocated' ? 'zero' : e.kind;
      pushMerged(out, { offset: e.offset, length: e.length, kind });
    }
    return out;
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.#client.read(offset, length);
  }

  async readInto(offset: number, target: Buffer): Promise<void> {
    (await this.#client.read(offset, target.length)).copy(target);
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}
