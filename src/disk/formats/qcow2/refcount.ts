/**
 * Refcounts for the writer. Every host cluster Ferry writes is used exactly once (header,
 * data, L2, L1, refcount blocks and table), except clusters holding compressed data:
 * `qemu-img check` counts one reference per compressed cluster per host cluster its
 * sector-rounded range touches (block/qcow2-refcount.c, check_refcounts_l2), so those
 * clusters carry that count. Only they are stored, in pages allocated on demand, so
 * memory follows the compressed output, not the disk size.
 */
import { InternalError } from '../../../errors/index.js';

/** refcount_order 4: 16-bit refcounts, QEMU's default. */
export const REFCOUNT_ORDER = 4;
export const REFCOUNT_BYTES = 2;
const MAX_REFCOUNT = 0xffff;
const PAGE_CLUSTERS = 65536;

export class CompressedRefcounts {
  readonly #pages = new Map<number, Uint16Array>();

  /** Adds one reference to each host cluster in [first, last]. */
  add(first: number, last: number): void {
    for (let c = first; c <= last; c++) {
      const key = Math.floor(c / PAGE_CLUSTERS);
      let page = this.#pages.get(key);
      if (!page) {
        page = new Uint16Array(PAGE_CLUSTERS);
        this.#pages.set(key, page);
      }
      const i = c % PAGE_CLUSTERS;
      // A cluster holds at most cluster_size / (smallest deflate output) pieces, far below
      // 2^16; this guards the invariant rather than a reachable case.
      if ((page[i] as number) >= MAX_REFCOUNT)
        throw new InternalError(`qcow2 refcount overflow at cluster ${c}`);
      page[i] = (page[i] as number) + 1;
    }
  }

  /** Refcount of a used cluster: its compressed references, or 1. */
  get(cluster: number): number {
    const page = this.#pages.get(Math.floor(cluster / PAGE_CLUSTERS));
    return (page?.[cluster % PAGE_CLUSTERS] as number | undefined) || 1;
  }
}

export interface RefcountPlan {
  /** Clusters in the finished file, refcount structures included. */
  readonly totalClusters: number;
  readonly blocks: number;
  readonly tableClusters: number;
}

/**
 * How many refcount blocks and table clusters cover `usedClusters` plus themselves.
 * A fixed point: more clusters may need more blocks, which may need a bigger table. Each
 * round only grows the totals, and they are bounded, so it ends in a few rounds.
 */
export function planRefcounts(usedClusters: number, clusterSize: number): RefcountPlan {
  const perBlock = clusterSize / REFCOUNT_BYTES;
  let total = usedClusters;
  let blocks = 0;
  let tableClusters = 0;
  for (;;) {
    blocks = Math.ceil(total / perBlock);
    tableClusters = Math.ceil((blocks * 8) / clusterSize);
    const next = usedClusters + blocks + tableClusters;
    if (next === total) break;
    total = next;
  }
  return { totalClusters: total, blocks, tableClusters };
}

/** Refcount block `index` of a file of `total` used clusters. */
export function refcountBlock(
  index: number,
  total: number,
  clusterSize: number,
  counts: CompressedRefcounts,
): Buffer {
  const perBlock = clusterSize / REFCOUNT_BYTES;
  const block = Buffer.alloc(clusterSize);
  const first = index * perBlock;
  const n = Math.min(perBlock, total - first);
  for (let i = 0; i < n; i++) block.writeUInt16BE(counts.get(first + i), i * REFCOUNT_BYTES);
  return block;
}
