/**
 * A bounded LRU of loaded tables (qcow2 L2 tables), keyed by file offset. Loads are
 * shared: concurrent reads that need the same table wait for one source read. A failed
 * load is dropped so the error is not cached. Memory is at most `capacity` tables,
 * whatever the virtual size.
 */
export class TableCache {
  readonly #capacity: number;
  readonly #load: (offset: number) => Promise<Buffer>;
  readonly #entries = new Map<number, Promise<Buffer>>();

  constructor(capacity: number, load: (offset: number) => Promise<Buffer>) {
    this.#capacity = Math.max(1, capacity);
    this.#load = load;
  }

  get(offset: number): Promise<Buffer> {
    const hit = this.#entries.get(offset);
    if (hit) {
      // Re-insert: Map iteration order is insertion order, so the first key is the LRU.
      this.#entries.delete(offset);
      this.#entries.set(offset, hit);
      return hit;
    }
    const p = this.#load(offset);
    this.#entries.set(offset, p);
    p.catch(() => {
      if (this.#entries.get(offset) === p) this.#entries.delete(offset);
    });
    while (this.#entries.size > this.#capacity) {
      const oldest = this.#entries.keys().next().value as number;
      this.#entries.delete(oldest);
    }
    return p;
  }

  get size(): number {
    return this.#entries.size;
  }
}
