/**
 * A view of a disk from `start` (to its end, or for `length` bytes), so a resumed write
 * streams only the part after its last checkpoint, and an incremental one only the ranges
 * it must read, through the disk engine's `chunks()`. Does not own the inner disk.
 */
import type { Disk, Extent } from '../../disk/index.js';

export class OffsetDisk implements Disk {
  readonly virtualSize: number;
  readonly layers: Disk['layers'];
  readonly names: Disk['names'];
  readonly #inner: Disk;
  readonly #start: number;

  constructor(inner: Disk, start: number, length = inner.virtualSize - start) {
    this.#inner = inner;
    this.#start = start;
    this.virtualSize = length;
    this.layers = inner.layers;
    this.names = inner.names;
  }

  async *map(offset = 0, length = this.virtualSize - offset): AsyncGenerator<Extent> {
    for await (const e of this.#inner.map(this.#start + offset, length))
      yield { ...e, offset: e.offset - this.#start };
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.#inner.read(this.#start + offset, length);
  }

  async readInto(offset: number, target: Buffer): Promise<void> {
    if (this.#inner.readInto) return this.#inner.readInto(this.#start + offset, target);
    (await this.#inner.read(this.#start + offset, target.length)).copy(target);
  }

  async close(): Promise<void> {}
}
