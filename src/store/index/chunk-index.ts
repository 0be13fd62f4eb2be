/**
 * The in-memory index: chunk id → where it is stored. The union of every index file (a
 * chunk found in two packs keeps its first location; any copy will do). Keys are the
 * 32-byte ids as one-byte strings (cheap to hash and compare); pack ids are interned.
 */
import type { BlobType } from '../chunk/blob.js';
import type { Compression } from '../chunk/compress.js';
import type { PackEntry } from '../pack/format.js';

export interface Location {
  readonly packId: string;
  readonly entry: PackEntry;
}

interface Slot {
  readonly pack: number;
  readonly offset: number;
  readonly length: number;
  readonly rawLength: number;
  readonly type: BlobType;
  readonly compression: Compression;
}

export const idKey = (id: Buffer): string => id.toString('latin1');

export class ChunkIndex {
  readonly #packIds: string[] = [];
  readonly #packNo = new Map<string, number>();
  readonly #chunks = new Map<string, Slot>();

  get size(): number {
    return this.#chunks.size;
  }

  add(packId: string, e: PackEntry): void {
    const key = idKey(e.id);
    if (this.#chunks.has(key)) return;
    let pack = this.#packNo.get(packId);
    if (pack === undefined) {
      pack = this.#packIds.length;
      this.#packIds.push(packId);
      this.#packNo.set(packId, pack);
    }
    this.#chunks.set(key, {
      pack,
      offset: e.offset,
      length: e.length,
      rawLength: e.rawLength,
      type: e.type,
      compression: e.compression,
    });
  }

  addPack(packId: string, entries: readonly PackEntry[]): void {
    for (const e of entries) this.add(packId, e);
  }

  has(id: Buffer): boolean {
    return this.#chunks.has(idKey(id));
  }

  hasKey(key: string): boolean {
    return this.#chunks.has(key);
  }

  get(id: Buffer): Location | undefined {
    return this.getKey(idKey(id));
  }

  getKey(key: string): Location | undefined {
    const s = this.#chunks.get(key);
    if (!s) return undefined;
    return {
      packId: this.#packIds[s.pack] as string,
      entry: {
        id: Buffer.from(key, 'latin1'),
        offset: s.offset,
        length: s.length,
        rawLength: s.rawLength,
        type: s.type,
        compression: s.compression,
      },
    };
  }

  /** Every pack id this index points into. */
  packIds(): Set<string> {
    const used = new Set<number>();
    for (const s of this.#chunks.values()) used.add(s.pack);
    return new Set([...used].map((n) => this.#packIds[n] as string));
  }
}
