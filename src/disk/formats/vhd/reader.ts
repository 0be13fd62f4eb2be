/**
 * The VHD layers: the only VHD code that does I/O (through the ByteSource it is given).
 *
 * A fixed VHD is its data followed by the footer. A dynamic or differencing VHD is mapped
 * through the BAT (loaded whole: at most MAX_METADATA_TABLE_BYTES) and the sector bitmaps,
 * read on demand; all-ones and all-zeros bitmaps are remembered as one byte per block, the
 * others in a bounded LRU cache (limits.METADATA_CACHE_BYTES), so memory stays flat.
 */
import type { ByteSource } from '../../io/byte-source.js';
import { pushMerged, type LayerExtent } from '../../extent.js';
import type { DiskLayer, LayerInfo, ParentReference } from '../../layer.js';
import { METADATA_CACHE_BYTES } from '../../limits.js';
import { classifyBitmap, usedBitmapBytes } from './bitmap.js';
import { isZeroUuid, type DynamicHeader, type VhdFooter } from './header.js';
import { BAT_UNALLOCATED, FEATURE_TEMPORARY, SECTOR } from './layout.js';
import { chooseParent, decodeLocator, type ParentChoice } from './locator.js';
import { mapRange, type BlockState, type MapGeometry } from './map.js';

/** Blocks whose states one step of map() gathers (bounds per-call memory with tiny blocks). */
const STATE_WINDOW_BLOCKS = 4096;
/** Source reads in flight for one call. */
const READ_CONCURRENCY = 8;
/** Data runs this close in the file are read together (the gap is a bitmap or clear sectors). */
const MAX_READ_GAP = 64 * 1024;
/** Largest single source read when joining runs. */
const MAX_JOINED_READ = 8 * 1024 * 1024;

const KIND_UNKNOWN = 0;
const KIND_FULL = 1;
const KIND_EMPTY = 2;
const KIND_MIXED = 3;
const UNALLOCATED: BlockState = Object.freeze({ kind: 'unallocated' });

function vhdTime(seconds: number): string {
  return new Date((946_684_800 + seconds) * 1000).toISOString();
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function footerDetails(f: VhdFooter): Record<string, string | number | boolean> {
  return {
    diskType: f.diskType,
    creatorApp: printable(f.creatorApp),
    creatorVersion: `${f.creatorVersion >>> 16}.${f.creatorVersion & 0xffff}`,
    creatorOs: printable(f.creatorOs),
    timestamp: vhdTime(f.timestamp),
    currentSize: Number(f.currentSize <= BigInt(Number.MAX_SAFE_INTEGER) ? f.currentSize : -1n),
    originalSize: Number(f.originalSize <= BigInt(Number.MAX_SAFE_INTEGER) ? f.originalSize : -1n),
    geometry: `${f.cylinders}/${f.heads}/${f.sectorsPerTrack}`,
    chsSize: f.cylinders * f.heads * f.sectorsPerTrack * SECTOR,
    sizeSource: f.sizeSource,
    temporary: (f.features & FEATURE_TEMPORARY) !== 0,
    savedState: f.savedState,
  };
}

function footerWarnings(f: VhdFooter): string[] {
  return f.savedState ? ['the VHD is marked as in a saved state (the VM was suspended with it)'] : [];
}

export class FixedVhdLayer implements DiskLayer {
  readonly info: LayerInfo;
  readonly #src: ByteSource;

  /** The caller checked that the virtual size fits before the footer. */
  constructor(src: ByteSource, footer: VhdFooter) {
    this.#src = src;
    this.info = Object.freeze({
      format: 'vhd',
      subformat: 'fixed',
      virtualSize: footer.virtualSize,
      clusterSize: SECTOR,
      fileSize: src.size,
      id: footer.uniqueId,
      files: [],
      warnings: footerWarnings(footer),
      details: Object.freeze(footerDetails(footer)),
    });
  }

  async map(offset: number, length: number): Promise<LayerExtent[]> {
    return length === 0 ? [] : [{ offset, length, kind: 'data', fileOffset: offset }];
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.#src.read(offset, length);
  }

  close(): Promise<void> {
    return this.#src.close();
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function runLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export interface DynamicParts {
  readonly footer: VhdFooter;
  readonly header: DynamicHeader;
  readonly bat: Uint32Array;
  readonly parent?: ParentChoice;
  readonly warnings: readonly string[];
}

export class DynamicVhdLayer implements DiskLayer {
  readonly info: LayerInfo;
  readonly #src: ByteSource;
  readonly #bat: Uint32Array;
  readonly #geo: MapGeometry;
  readonly #bitmapSize: number;
  readonly #usedBits: number;
  /** Per block: unknown / all ones / all zeros / mixed (bits in #mixed when cached). */
  readonly #kinds: Uint8Array;
  readonly #mixed = new Map<number, Buffer>();
  #mixedBytes = 0;

  constructor(src: ByteSource, parts: DynamicParts) {
    const { footer, header, bat } = parts;
    this.#src = src;
    this.#bat = bat;
    this.#bitmapSize = header.bitmapSize;
    this.#usedBits = usedBitmapBytes(header.blockSize);
    this.#geo = {
      blockSize: header.blockSize,
      clearKind: footer.diskType === 'differencing' ? 'unallocated' : 'zero',
    };
    this.#kinds = new Uint8Array(Math.ceil(footer.virtualSize / header.blockSize));
    let parent: ParentReference | undefined;
    if (parts.parent) {
      parent = Object.freeze({
        name: parts.parent.name,
        format: 'vhd',
        ...(isZeroUuid(header.parentId) ? {} : { expectedId: header.parentId }),
      });
    }
    this.info = Object.freeze({
      format: 'vhd',
      subformat: footer.diskType,
      virtualSize: footer.virtualSize,
      clusterSize: header.blockSize,
      fileSize: src.size,
      ...(parent ? { parent } : {}),
      id: footer.uniqueId,
      files: [],
      warnings: Object.freeze([...footerWarnings(footer), ...parts.warnings]),
      details: Object.freeze({
        ...footerDetails(footer),
        blockSize: header.blockSize,
        maxTableEntries: header.maxTableEntries,
        tableOffset: header.tableOffset,
        ...(parts.parent
          ? {
              parentName: header.parentName,
              parentId: header.parentId,
              parentTimestamp: vhdTime(header.parentTimestamp),
              parentLocator: parts.parent.source,
            }
          : {}),
      }),
    });
  }

  async map(offset: number, length: number): Promise<LayerExtent[]> {
    const out: LayerExtent[] = [];
    const bs = this.#geo.blockSize;
    const end = offset + length;
    for (let pos = offset; pos < end;) {
      const stop = Math.min(end, (Math.floor(pos / bs) + STATE_WINDOW_BLOCKS) * bs);
      const stateOf = await this.#states(pos, stop);
      for (const e of mapRange(pos, stop - pos, this.#geo, stateOf)) pushMerged(out, e);
      pos = stop;
    }
    return out;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const extents = await this.map(offset, length);
    const only = extents[0];
    if (extents.length === 1 && only?.kind === 'data' && only.fileOffset !== undefined) {
      return this.#src.read(only.fileOffset, length);
    }
    const compact = await this.#readCompacting(offset, length, extents);
    if (compact) return compact;
    const out = Buffer.allocUnsafe(length);
    // Group data runs that lie close together in the file into one source read each.
    const groups: { start: number; end: number; runs: LayerExtent[] }[] = [];
    for (const e of extents) {
      if (e.kind !== 'data' || e.fileOffset === undefined) {
        out.fill(0, e.offset - offset, e.offset - offset + e.length);
        continue;
      }
      const g = groups[groups.length - 1];
      const eEnd = e.fileOffset + e.length;
      if (
        g &&
        e.fileOffset >= g.end &&
        e.fileOffset - g.end <= MAX_READ_GAP &&
        eEnd - g.start <= MAX_JOINED_READ
      ) {
        g.end = eEnd;
        g.runs.push(e);
      } else {
        groups.push({ start: e.fileOffset, end: eEnd, runs: [e] });
      }
    }
    await runLimited(groups, READ_CONCURRENCY, async (g) => {
      const buf = await this.#src.read(g.start, g.end - g.start);
      for (const r of g.runs) {
        const from = (r.fileOffset as number) - g.start;
        buf.copy(out, r.offset - offset, from, from + r.length);
      }
    });
    return out;
  }

  close(): Promise<void> {
    return this.#src.close();
  }

  /**
   * The common dense case: the range is all data, in blocks laid out one after another in
   * the file (only bitmaps in between). One source read covers it; the bitmaps are then
   * squeezed out in place (memmove within the buffer just read), which costs far less than
   * copying every byte into a second, fresh buffer. Undefined when the case does not apply.
   */
  async #readCompacting(offset: number, length: number, extents: LayerExtent[]): Promise<Buffer | undefined> {
    const first = extents[0];
    const last = extents[extents.length - 1];
    if (!first || !last || first.fileOffset === undefined || last.fileOffset === undefined) return undefined;
    const start = first.fileOffset;
    const end = last.fileOffset + last.length;
    if (end - start > MAX_JOINED_READ) return undefined;
    let prev: LayerExtent | undefined;
    for (const e of extents) {
      if (e.kind !== 'data' || e.fileOffset === undefined) return undefined;
      if (
        prev &&
        (e.fileOffset < (prev.fileOffset as number) + prev.length ||
          e.fileOffset - ((prev.fileOffset as number) + prev.length) > MAX_READ_GAP)
      ) {
        return undefined;
      }
      prev = e;
    }
    const buf = await this.#src.read(start, end - start);
    for (const e of extents) {
      const from = (e.fileOffset as number) - start;
      const to = e.offset - offset;
      if (from !== to) buf.copyWithin(to, from, from + e.length);
    }
    return buf.subarray(0, length);
  }

  /** Loads what is needed to know the state of every block in [from, to) bytes. */
  async #states(from: number, to: number): Promise<(block: number) => BlockState> {
    const bs = this.#geo.blockSize;
    const first = Math.floor(from / bs);
    const last = Math.ceil(to / bs);
    const local = new Map<number, Buffer>();
    const load: number[] = [];
    for (let b = first; b < last; b++) {
      if (this.#bat[b] === BAT_UNALLOCATED) continue;
      const kind = this.#kinds[b];
      if (kind === KIND_UNKNOWN) load.push(b);
      else if (kind === KIND_MIXED) {
        const bits = this.#mixed.get(b);
        if (!bits) load.push(b);
        else {
          local.set(b, bits);
          this.#mixed.delete(b); // re-insert: most recently used last
          this.#mixed.set(b, bits);
        }
      }
    }
    await runLimited(load, READ_CONCURRENCY, async (b) => {
      const bits = await this.#src.read((this.#bat[b] as number) * SECTOR, this.#usedBits);
      const cls = classifyBitmap(bits);
      this.#kinds[b] = cls === 'full' ? KIND_FULL : cls === 'empty' ? KIND_EMPTY : KIND_MIXED;
      if (cls === 'mixed') {
        local.set(b, bits);
        this.#remember(b, bits);
      }
    });
    return (b) => {
      const entry = this.#bat[b] as number;
      if (entry === BAT_UNALLOCATED) return UNALLOCATED;
      const dataOffset = entry * SECTOR + this.#bitmapSize;
      const kind = this.#kinds[b];
      if (kind === KIND_FULL) return { kind: 'full', dataOffset };
      if (kind === KIND_EMPTY) return { kind: 'empty', dataOffset };
      return { kind: 'mixed', dataOffset, bits: local.get(b) as Buffer };
    };
  }

  #remember(block: number, bits: Buffer): void {
    const cost = bits.length + 64;
    while (this.#mixedBytes + cost > METADATA_CACHE_BYTES && this.#mixed.size > 0) {
      const [oldest, old] = this.#mixed.entries().next().value as [number, Buffer];
      this.#mixed.delete(oldest);
      this.#mixedBytes -= old.length + 64;
    }
    if (!this.#mixed.has(block)) {
      this.#mixed.set(block, bits);
      this.#mixedBytes += cost;
    }
  }
}

/** Reads and decodes the locators of a differencing disk and picks its parent. */
export async function readParent(src: ByteSource, header: DynamicHeader): Promise<ParentChoice> {
  const decoded: (string | undefined)[] = [];
  for (const entry of header.locators) {
    decoded.push(decodeLocator(entry, await src.read(entry.dataOffset, entry.dataLength)));
  }
  return chooseParent(header, decoded, src.name);
}
