/**
 * Reads chunks back: index lookup, one ranged GET per run of neighbouring blobs of a
 * pack, then authenticate + decrypt + inflate each (openBlob). A chunk missing from the
 * index, a pack shorter than the index says, or any altered byte is a coded error —
 * never data.
 */
import { StoreCorruptError, StoreMissingChunkError } from '../../errors/index.js';
import { openBlob, type BlobType } from '../chunk/blob.js';
import { idKey, type ChunkIndex, type Location } from '../index/chunk-index.js';
import { packKey } from '../layout.js';
import { forEachLimit, type Repository } from '../repo/repository.js';

/** Neighbouring blobs closer than this are fetched in one GET (the gap is read and dropped). */
const MERGE_GAP_BYTES = 64 * 1024;
/** Largest single ranged GET. */
const MAX_RANGE_BYTES = 8 * 1024 * 1024;

export class ChunkFetcher {
  readonly #repo: Repository;
  readonly #index: ChunkIndex;

  constructor(repo: Repository, index: ChunkIndex) {
    this.#repo = repo;
    this.#index = index;
  }

  locate(id: Buffer, type: BlobType): Location {
    const loc = this.#index.get(id);
    if (!loc) {
      throw new StoreMissingChunkError(
        `${this.#repo.location}: chunk ${id.toString('hex')} is referenced but in no index`,
        { chunk: id.toString('hex') },
      );
    }
    if (loc.entry.type !== type) {
      throw new StoreCorruptError(
        `chunk ${id.toString('hex')} is not a ${type === 0 ? 'data' : 'tree'} blob`,
        {
          chunk: id.toString('hex'),
        },
      );
    }
    return loc;
  }

  async fetch(id: Buffer, type: BlobType): Promise<Buffer> {
    const loc = this.locate(id, type);
    const bytes = await this.#repo.backend.get(packKey(loc.packId), {
      offset: loc.entry.offset,
      length: loc.entry.length,
    });
    return openBlob(this.#repo.keys.encKey, loc.entry, bytes, describe(loc));
  }

  /** Fetches distinct chunks; the result maps idKey → content. */
  async fetchMany(ids: readonly Buffer[], type: BlobType, parallel = 4): Promise<Map<string, Buffer>> {
    const locs = ids.map((id) => this.locate(id, type));
    locs.sort((a, b) =>
      a.packId < b.packId ? -1 : a.packId > b.packId ? 1 : a.entry.offset - b.entry.offset,
    );
    const runs: Location[][] = [];
    for (const l of locs) {
      const run = runs[runs.length - 1];
      const last = run?.[run.length - 1];
      if (
        run &&
        last &&
        last.packId === l.packId &&
        l.entry.offset >= last.entry.offset + last.entry.length &&
        l.entry.offset - (last.entry.offset + last.entry.length) <= MERGE_GAP_BYTES &&
        l.entry.offset + l.entry.length - (run[0] as Location).entry.offset <= MAX_RANGE_BYTES
      ) {
        run.push(l);
      } else {
        runs.push([l]);
      }
    }
    const out = new Map<string, Buffer>();
    await forEachLimit(runs, parallel, async (run) => {
      const first = run[0] as Location;
      const last = run[run.length - 1] as Location;
      const start = first.entry.offset;
      const bytes = await this.#repo.backend.get(packKey(first.packId), {
        offset: start,
        length: last.entry.offset + last.entry.length - start,
      });
      for (const l of run) {
        const at = l.entry.offset - start;
        const blob = bytes.subarray(at, at + l.entry.length);
        out.set(idKey(l.entry.id), openBlob(this.#repo.keys.encKey, l.entry, blob, describe(l)));
      }
    });
    return out;
  }
}

function describe(l: Location): string {
  return `chunk ${l.entry.id.toString('hex').slice(0, 16)}… in pack ${l.packId.slice(0, 16)}… at ${l.entry.offset}`;
}
