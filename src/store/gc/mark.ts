/**
 * GC marking: every chunk reachable from a committed image (`images/`) or from the
 * checkpoints of an interrupted write (`staging/`). Shared subtrees are walked once. A
 * tree node that cannot be read aborts marking (and so GC): what it references is unknown.
 */
import { StoreMissingChunkError } from '../../errors/index.js';
import { idKey, type ChunkIndex } from '../index/chunk-index.js';
import { ID_BYTES, imageKey } from '../layout.js';
import { listImages } from '../images/images.js';
import { treeShape } from '../manifest/tree.js';
import { ChunkFetcher } from '../read/fetch.js';
import { walkTree } from '../read/tree-reader.js';
import type { Repository } from '../repo/repository.js';
import { listStaging, readMeta, readProgress } from '../write/staging.js';

export interface Marked {
  /** Referenced data chunks (idKey). */
  readonly data: Set<string>;
  /** Referenced tree nodes (idKey). */
  readonly tree: Set<string>;
  readonly images: number;
  readonly incomplete: number;
}

/**
 * `index` must include condemned entries of active GC records: a writer may have
 * deduplicated against them, and their tree nodes must stay readable for marking.
 */
export async function markReferenced(repo: Repository, index: ChunkIndex): Promise<Marked> {
  const fetcher = new ChunkFetcher(repo, index);
  const tree = new Set<string>();
  const data = new Set<string>();
  const visit = (level: number, _ref: Buffer, node: Buffer) => {
    if (level !== 1) return;
    for (let at = 0; at < node.length; at += ID_BYTES) {
      const ref = node.subarray(at, at + ID_BYTES);
      if (!ref.every((b) => b === 0)) data.add(idKey(ref));
    }
  };
  const { blockSize, fanout } = repo.config;
  const images = await listImages(repo);
  for (const image of images) {
    for (const d of image.disks) {
      const shape = treeShape(d.virtualSize, blockSize, fanout);
      await walkTree(fetcher, shape, shape.depth, 0, Buffer.from(d.root, 'hex'), tree, visit);
      // The digest tree's nodes are live; its leaves are digests, not chunks.
      if (d.digests)
        await walkTree(fetcher, shape, shape.depth, 0, Buffer.from(d.digests, 'hex'), tree, () => {});
    }
  }
  let incomplete = 0;
  for (const id of await listStaging(repo)) {
    if (await repo.backend.exists(imageKey(id))) continue; // committed: the image covers it
    const meta = await readMeta(repo, id).catch((err: unknown) => {
      if (err instanceof StoreMissingChunkError) return undefined; // abandoned (meta deleted first)
      throw err;
    });
    if (!meta) continue;
    incomplete++;
    const progress = await readProgress(repo, id, meta.disks.length);
    for (const [k, p] of progress.entries()) {
      const shape = treeShape(meta.disks[k]?.virtualSize ?? 0, blockSize, fanout);
      if (p.done) {
        await walkTree(fetcher, shape, shape.depth, 0, Buffer.from(p.done.root, 'hex'), tree, visit);
        const digests = p.done.digests;
        if (digests)
          await walkTree(fetcher, shape, shape.depth, 0, Buffer.from(digests, 'hex'), tree, () => {});
      }
      for (const [i, ref] of p.pages.entries()) await walkTree(fetcher, shape, 1, i, ref, tree, visit);
    }
  }
  return { data, tree, images: images.length, incomplete };
}
