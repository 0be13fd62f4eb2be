/**
 * Walks an image's manifest tree: the block references of any block range, with a
 * byte-bounded LRU of decoded nodes, so random access costs at most `depth` node fetches
 * and memory does not grow with the disk. Every node is checked against the shape: a node
 * with the wrong number of references is corrupt, whatever its authentication says.
 */
import { StoreCorruptError } from '../../errors/index.js';
import { BLOB_TREE } from '../chunk/blob.js';
import { idKey } from '../index/chunk-index.js';
import { ID_BYTES } from '../layout.js';
import { blocksPerNode, childCount, isZeroRef, type TreeShape } from '../manifest/tree.js';
import type { ChunkFetcher } from './fetch.js';

/** Refuses a node whose number of references disagrees with the disk's shape. */
export function checkNode(shape: TreeShape, level: number, index: number, ref: Buffer, node: Buffer): void {
  const expected = childCount(shape, level, index) * ID_BYTES;
  if (node.length !== expected) {
    throw new StoreCorruptError(
      `tree node ${ref.toString('hex').slice(0, 16)}… (level ${level}, #${index}) has ` +
        `${node.length / ID_BYTES} references, the disk's shape needs ${expected / ID_BYTES}`,
      { node: ref.toString('hex'), level, index },
    );
  }
}

/**
 * Visits every node of the subtree at (`level`, `index`) with reference `ref`, depth first,
 * skipping zero subtrees and nodes already in `seen` (shared subtrees are walked once).
 */
export async function walkTree(
  fetcher: ChunkFetcher,
  shape: TreeShape,
  level: number,
  index: number,
  ref: Buffer,
  seen: Set<string>,
  visit: (level: number, ref: Buffer, node: Buffer) => void,
): Promise<void> {
  if (isZeroRef(ref) || seen.has(idKey(ref))) return;
  seen.add(idKey(ref));
  const node = await fetcher.fetch(ref, BLOB_TREE);
  checkNode(shape, level, index, ref, node);
  visit(level, ref, node);
  if (level === 1) return;
  for (let c = 0; c < node.length / ID_BYTES; c++) {
    const child = node.subarray(c * ID_BYTES, (c + 1) * ID_BYTES);
    await walkTree(fetcher, shape, level - 1, index * shape.fanout + c, child, seen, visit);
  }
}

/** Decoded tree nodes kept per open image: 16 MiB (256 nodes of 64 KiB). */
const NODE_CACHE_BYTES = 16 * 1024 * 1024;

export class TreeReader {
  readonly shape: TreeShape;
  readonly #root: Buffer;
  readonly #fetcher: ChunkFetcher;
  readonly #cache = new Map<string, Buffer>();
  #cacheBytes = 0;

  constructor(shape: TreeShape, root: Buffer, fetcher: ChunkFetcher) {
    this.shape = shape;
    this.#root = root;
    this.#fetcher = fetcher;
  }

  /** References of blocks [first, first+count), count × 32 bytes (zero ref for zero blocks). */
  async blockRefs(first: number, count: number): Promise<Buffer> {
    const out = Buffer.alloc(count * ID_BYTES);
    if (count > 0 && this.shape.depth > 0) {
      await this.#walk(this.shape.depth, 0, this.#root, first, first + count, first, out);
    }
    return out;
  }

  /**
   * Blocks [first, first+count) as runs of zero / data blocks, merged. Zero subtrees are
   * one run whatever their size (a 2 TiB empty disk maps in one step).
   */
  async blockRuns(first: number, count: number): Promise<{ start: number; count: number; zero: boolean }[]> {
    const runs: { start: number; count: number; zero: boolean }[] = [];
    const push = (start: number, n: number, zero: boolean) => {
      const last = runs[runs.length - 1];
      if (last && last.zero === zero && last.start + last.count === start) last.count += n;
      else runs.push({ start, count: n, zero });
    };
    const end = first + count;
    const visit = async (level: number, index: number, ref: Buffer): Promise<void> => {
      const span = blocksPerNode(this.shape, level);
      const nodeStart = index * span;
      const s = Math.max(first, nodeStart);
      const e = Math.min(end, nodeStart + span, this.shape.blocks);
      if (s >= e) return;
      if (isZeroRef(ref)) return push(s, e - s, true);
      if (level === 0) return push(s, e - s, false);
      const node = await this.#node(level, index, ref);
      const childSpan = blocksPerNode(this.shape, level - 1);
      const cFirst = Math.floor((s - nodeStart) / childSpan);
      const cLast = Math.floor((e - 1 - nodeStart) / childSpan);
      for (let c = cFirst; c <= cLast; c++) {
        await visit(
          level - 1,
          index * this.shape.fanout + c,
          node.subarray(c * ID_BYTES, (c + 1) * ID_BYTES),
        );
      }
    };
    if (count > 0) {
      if (this.shape.depth === 0) push(first, count, true);
      else await visit(this.shape.depth, 0, this.#root);
    }
    return runs;
  }

  async #walk(
    level: number,
    index: number,
    ref: Buffer,
    from: number,
    to: number,
    base: number,
    out: Buffer,
  ) {
    if (isZeroRef(ref)) return;
    const node = await this.#node(level, index, ref);
    const span = blocksPerNode(this.shape, level - 1);
    const nodeStart = index * blocksPerNode(this.shape, level);
    const cFirst = Math.max(0, Math.floor((from - nodeStart) / span));
    const cLast = Math.min(node.length / ID_BYTES - 1, Math.floor((to - 1 - nodeStart) / span));
    for (let c = cFirst; c <= cLast; c++) {
      const child = node.subarray(c * ID_BYTES, (c + 1) * ID_BYTES);
      if (level === 1) child.copy(out, (nodeStart + c - base) * ID_BYTES);
      else await this.#walk(level - 1, index * this.shape.fanout + c, child, from, to, base, out);
    }
  }

  async #node(level: number, index: number, ref: Buffer): Promise<Buffer> {
    const key = idKey(ref);
    const hit = this.#cache.get(key);
    if (hit) {
      this.#cache.delete(key);
      this.#cache.set(key, hit);
    } else {
      const node = await this.#fetcher.fetch(ref, BLOB_TREE);
      checkNode(this.shape, level, index, ref, node);
      this.#cache.set(key, node);
      this.#cacheBytes += node.length;
      for (const [k, v] of this.#cache) {
        if (this.#cacheBytes <= NODE_CACHE_BYTES) break;
        this.#cache.delete(k);
        this.#cacheBytes -= v.length;
      }
    }
    return this.#cache.get(key) as Buffer;
  }
}
