/**
 * Image manifests are trees of 32-byte references (docs/store.md, "Image manifests"):
 * level-1 nodes ("pages") hold up to F block references, level-L nodes up to F references
 * to level-(L−1) nodes; the root is one reference at depth D. The shape is a pure function
 * of (virtual size, block size, fan-out), so a reader knows exactly how many children
 * every node must have and refuses a node that disagrees.
 */
import { InternalError } from '../../errors/index.js';
import { ID_BYTES } from '../layout.js';

export const ZERO_REF = Buffer.alloc(ID_BYTES);

export interface TreeShape {
  readonly virtualSize: number;
  readonly blockSize: number;
  readonly fanout: number;
  readonly blocks: number;
  /** 0 only for an empty disk (no blocks, zero root). */
  readonly depth: number;
  /** counts[0] = blocks, counts[L] = nodes at level L (counts[depth] = 1). */
  readonly counts: readonly number[];
  /** Length of the last block (= blockSize unless the size is not a multiple of it). */
  readonly lastBlockBytes: number;
}

export function treeShape(virtualSize: number, blockSize: number, fanout: number): TreeShape {
  if (!Number.isSafeInteger(virtualSize) || virtualSize < 0)
    throw new InternalError(`bad virtual size ${virtualSize}`);
  const blocks = Math.ceil(virtualSize / blockSize);
  const counts = [blocks];
  if (blocks > 0) {
    do counts.push(Math.ceil((counts[counts.length - 1] as number) / fanout));
    while ((counts[counts.length - 1] as number) > 1);
  }
  const lastBlockBytes = blocks === 0 ? 0 : virtualSize - (blocks - 1) * blockSize;
  return Object.freeze({
    virtualSize,
    blockSize,
    fanout,
    blocks,
    depth: counts.length - 1,
    counts,
    lastBlockBytes,
  });
}

/** Children of node `index` at `level` (≥ 1). */
export function childCount(shape: TreeShape, level: number, index: number): number {
  return Math.min(shape.fanout, (shape.counts[level - 1] as number) - index * shape.fanout);
}

/** Blocks covered by one node at `level` (fanout^level). */
export function blocksPerNode(shape: TreeShape, level: number): number {
  return shape.fanout ** level;
}

export function isZeroRef(ref: Buffer): boolean {
  return ref.equals(ZERO_REF);
}

/** Stores a node's content; returns its id. */
export type NodeSink = (level: number, content: Buffer) => Buffer;

interface Building {
  readonly buf: Buffer;
  n: number;
  index: number;
  allZero: boolean;
}

/**
 * Builds a tree bottom-up from block references pushed in order. Nodes are emitted
 * (through `sink`) as soon as they are complete; all-zero subtrees become ZERO_REF and are
 * never stored. `onNode` sees every completed node (the writer checkpoints level-1 pages).
 */
export class TreeBuilder {
  readonly shape: TreeShape;
  readonly #sink: NodeSink;
  readonly #onNode: ((level: number, index: number, ref: Buffer) => void) | undefined;
  readonly #levels: Building[] = [];
  #root: Buffer | undefined;

  constructor(
    shape: TreeShape,
    sink: NodeSink,
    onNode?: (level: number, index: number, ref: Buffer) => void,
  ) {
    this.shape = shape;
    this.#sink = sink;
    this.#onNode = onNode;
    for (let l = 0; l <= shape.depth; l++) {
      this.#levels.push({
        buf: Buffer.alloc(l === 0 ? 0 : shape.fanout * ID_BYTES),
        n: 0,
        index: 0,
        allZero: true,
      });
    }
    if (shape.depth === 0) this.#root = ZERO_REF;
  }

  /** Blocks pushed so far (or skipped by {@link seedPages}). */
  get blocksDone(): number {
    const l1 = this.#levels[1];
    return l1 ? Math.min(this.shape.blocks, l1.index * this.shape.fanout + l1.n) : 0;
  }

  pushBlockRef(ref: Buffer): void {
    this.#push(1, ref);
  }

  pushZeroBlocks(count: number): void {
    let left = count;
    const l1 = this.#levels[1] as Building;
    while (left > 0) {
      const need = childCount(this.shape, 1, l1.index);
      if (l1.n === 0 && left >= need) {
        this.#complete(1, ZERO_REF); // a whole page of zeros: no per-block work
        left -= need;
      } else {
        this.#push(1, ZERO_REF);
        left--;
      }
    }
  }

  /** Resume: level-1 pages already committed, in order from the first. */
  seedPages(pageRefs: readonly Buffer[]): void {
    if (pageRefs.length === 0) return;
    const l1 = this.#levels[1];
    if (!l1 || l1.index !== 0 || l1.n !== 0) throw new InternalError('seedPages on a started tree');
    for (const ref of pageRefs) this.#complete(1, ref, false);
  }

  finish(): Buffer {
    if (!this.#root) {
      throw new InternalError(`tree incomplete: ${this.blocksDone} of ${this.shape.blocks} blocks pushed`);
    }
    return this.#root;
  }

  #push(level: number, ref: Buffer): void {
    const b = this.#levels[level];
    if (!b || this.#root) throw new InternalError('more references pushed than the tree holds');
    ref.copy(b.buf, b.n * ID_BYTES);
    if (b.allZero && !isZeroRef(ref)) b.allZero = false;
    b.n++;
    if (b.n === childCount(this.shape, level, b.index)) {
      const node = b.allZero ? ZERO_REF : this.#sink(level, Buffer.from(b.buf.subarray(0, b.n * ID_BYTES)));
      b.n = 0;
      b.allZero = true;
      this.#complete(level, node);
    }
  }

  /** Node `levels[level].index` is done with reference `ref`; pass it up. */
  #complete(level: number, ref: Buffer, notify = true): void {
    const b = this.#levels[level] as Building;
    const index = b.index++;
    if (notify) this.#onNode?.(level, index, ref);
    if (level === this.shape.depth) this.#root = ref;
    else this.#push(level + 1, ref);
  }
}
