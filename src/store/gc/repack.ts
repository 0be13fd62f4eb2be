/**
 * Repacking: copies the live blobs of mostly-dead packs into new packs, verbatim (a blob's
 * authentication does not depend on its pack), and indexes them. The old packs are then
 * condemned whole, like dead ones. A pack whose tail does not hash to its name is left alone
 * (and reported); a copied blob keeps its GCM tag, so corruption inside one is never
 * laundered: it still fails authentication wherever it is read.
 */
import type { SealedBlob } from '../chunk/blob.js';
import { ChunkIndex } from '../index/chunk-index.js';
import type { IndexedPack } from '../index/format.js';
import { MAX_PACK_BYTES, packKey } from '../layout.js';
import { packIdOf, parseTrailer, TRAILER_BYTES } from '../pack/format.js';
import { PackSink } from '../pack/packer.js';
import type { Repository } from '../repo/repository.js';

export interface RepackResult {
  readonly repacked: string[];
  readonly skipped: string[];
  readonly chunks: number;
}

export async function repack(
  repo: Repository,
  packs: readonly { pack: IndexedPack; size: number; live: ReadonlySet<string> }[],
  packBytes?: number,
): Promise<RepackResult> {
  const sink = new PackSink(repo, new ChunkIndex(), packBytes ? { packBytes } : {});
  const repacked: string[] = [];
  const skipped: string[] = [];
  let chunks = 0;
  for (const { pack, size, live } of packs) {
    if (size > MAX_PACK_BYTES) {
      skipped.push(pack.packId);
      continue;
    }
    const bytes = await repo.backend.get(packKey(pack.packId));
    const trailer = bytes.subarray(Math.max(0, bytes.length - TRAILER_BYTES));
    const where = (() => {
      try {
        return parseTrailer(trailer, bytes.length, pack.packId);
      } catch {
        return undefined;
      }
    })();
    if (
      !where ||
      packIdOf(bytes.subarray(where.offset, where.offset + where.length), trailer) !== pack.packId
    ) {
      skipped.push(pack.packId);
      continue;
    }
    for (const e of pack.entries) {
      if (!live.has(e.id.toString('latin1'))) continue;
      if (e.offset + e.length > bytes.length) {
        skipped.push(pack.packId);
        break;
      }
      const blob: SealedBlob = { ...e, bytes: bytes.subarray(e.offset, e.offset + e.length) };
      sink.add(blob);
      chunks++;
      await sink.backpressure();
    }
    if (skipped[skipped.length - 1] !== pack.packId) repacked.push(pack.packId);
  }
  await sink.flush();
  return { repacked, skipped, chunks };
}
