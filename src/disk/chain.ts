/**
 * A disk as the user sees it: a stack of layers (the image named, its backing file, …).
 * Composition is generic: a layer's `unallocated` ranges fall through to the next layer;
 * past the end of a smaller parent, and below the last layer, the disk reads zeros.
 *
 * `map()` walks the disk in windows so memory does not grow with the virtual size.
 */
import { InternalError } from '../errors/index.js';
import { pushMerged, type Extent } from './extent.js';
import type { DiskLayer, LayerInfo } from './layer.js';

/** Map window: big enough to amortise per-call cost, small enough to bound extent lists. */
const MAP_WINDOW_BYTES = 1024 * 1024 * 1024;
/**
 * The first window is small and each next one twice as large (up to MAP_WINDOW_BYTES):
 * a copy cannot start before the first window is mapped, and mapping 1 GiB of a fragmented
 * qcow2 first took a good part of the time before a convert's first write.
 */
const FIRST_MAP_WINDOW_BYTES = 16 * 1024 * 1024;

export interface Disk {
  readonly virtualSize: number;
  /** Top layer first. */
  readonly layers: readonly LayerInfo[];
  /** Names of the layers' files, top first (for messages and `info`). */
  readonly names: readonly string[];
  /** Merged tagged extents of [offset, offset+length), resolved through the chain. */
  map(offset?: number, length?: number): AsyncGenerator<Extent>;
  /** Exactly `length` bytes of the virtual disk at `offset` (must be inside it). */
  read(offset: number, length: number): Promise<Buffer>;
  /** Optional: `read` into all of `target`, so the pipeline can reuse its buffers. */
  readInto?(offset: number, target: Buffer): Promise<void>;
  close(): Promise<void>;
}

export class LayeredDisk implements Disk {
  readonly virtualSize: number;
  readonly layers: readonly LayerInfo[];
  readonly names: readonly string[];
  readonly #layers: readonly DiskLayer[];

  /** `layers` top first; `names` parallel to it. Takes ownership (closes them). */
  constructor(layers: readonly DiskLayer[], names: readonly string[]) {
    const top = layers[0];
    if (!top || names.length !== layers.length) throw new InternalError('LayeredDisk needs layers and names');
    this.#layers = layers;
    this.names = names;
    this.layers = layers.map((l) => l.info);
    this.virtualSize = top.info.virtualSize;
  }

  async *map(offset = 0, length = this.virtualSize - offset): AsyncGenerator<Extent> {
    checkRange(offset, length, this.virtualSize);
    const end = offset + length;
    let pending: Extent | undefined;
    let window = FIRST_MAP_WINDOW_BYTES;
    for (let pos = offset; pos < end; pos += window, window = Math.min(MAP_WINDOW_BYTES, window * 2)) {
      const win = await this.mapRange(pos, Math.min(window, end - pos));
      for (const e of win) {
        if (pending) {
          const merged: Extent[] = [pending];
          pushMerged(merged, e);
          if (merged.length === 1) {
            pending = merged[0];
            continue;
          }
          yield pending;
        }
        pending = e;
      }
    }
    if (pending) yield pending;
  }

  /** Extents of a range, resolved through the chain (whole list in memory: keep ranges modest). */
  async mapRange(offset: number, length: number): Promise<Extent[]> {
    checkRange(offset, length, this.virtualSize);
    const out: Extent[] = [];
    await this.#resolve(0, offset, length, out);
    return out;
  }

  async #resolve(depth: number, offset: number, length: number, out: Extent[]): Promise<void> {
    const layer = this.#layers[depth];
    if (!layer) {
      pushMerged(out, { offset, length, kind: 'unallocated', depth: this.#layers.length, source: '' });
      return;
    }
    const size = layer.info.virtualSize;
    const inside = Math.max(0, Math.min(length, size - offset));
    if (inside > 0) {
      for (const e of await layer.map(offset, inside)) {
        if (e.kind === 'unallocated') await this.#resolve(depth + 1, e.offset, e.length, out);
        else pushMerged(out, { ...e, depth, source: this.names[depth] ?? '' });
      }
    }
    if (inside < length) {
      // A parent smaller than its child: the tail reads as zeros (qcow2 spec, "backing file").
      pushMerged(out, {
        offset: offset + inside,
        length: length - inside,
        kind: 'unallocated',
        depth: this.#layers.length,
        source: '',
      });
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(offset, length, this.virtualSize);
    const top = this.#layers[0] as DiskLayer;
    if (this.#layers.length === 1) return top.read(offset, length);
    const out = Buffer.alloc(length);
    for (const e of await this.mapRange(offset, length)) {
      if (e.kind === 'data' || e.kind === 'compressed') {
        const layer = this.#layers[e.depth] as DiskLayer;
        (await layer.read(e.offset, e.length)).copy(out, e.offset - offset);
      }
    }
    return out;
  }

  async readInto(offset: number, target: Buffer): Promise<void> {
    checkRange(offset, target.length, this.virtualSize);
    const top = this.#layers[0] as DiskLayer;
    if (this.#layers.length === 1 && top.readInto) return top.readInto(offset, target);
    (await this.read(offset, target.length)).copy(target);
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled(this.#layers.map((l) => l.close()));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
}

function checkRange(offset: number, length: number, size: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new InternalError(`invalid disk range ${offset}+${length}`);
  }
  if (offset + length > size) throw new InternalError(`range ${offset}+${length} beyond disk size ${size}`);
}
