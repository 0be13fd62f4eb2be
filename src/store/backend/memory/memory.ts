/**
 * An in-memory back end: the unit-test seam. `faults` lets a test make any operation fail
 * (to simulate a crash at an exact point) or tamper with what `get` returns.
 */
import { IoError } from '../../../errors/index.js';
import {
  checkKey,
  checkPrefix,
  checkRange,
  missingObject,
  type Backend,
  type ByteRange,
  type ObjectInfo,
} from '../backend.js';

export type BackendOp = 'put' | 'get' | 'list' | 'delete' | 'exists';

export interface MemoryFaults {
  /** Throw before performing the operation when this returns true (a "crash" point). */
  fail?(op: BackendOp, key: string): boolean;
}

export class MemoryBackend implements Backend {
  readonly location: string;
  readonly objects = new Map<string, Buffer>();
  faults: MemoryFaults = {};
  /** Operation counts, for tests that pick crash points. */
  readonly counts: Record<BackendOp, number> = { put: 0, get: 0, list: 0, delete: 0, exists: 0 };

  constructor(location = 'memory') {
    this.location = location;
  }

  #op(op: BackendOp, key: string): void {
    this.counts[op]++;
    if (this.faults.fail?.(op, key)) throw new IoError(`injected failure: ${op} ${key}`, { op, key });
  }

  async put(key: string, data: Buffer | readonly Buffer[]): Promise<void> {
    checkKey(key);
    this.#op('put', key);
    this.objects.set(key, Buffer.isBuffer(data) ? Buffer.from(data) : Buffer.concat(data));
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    checkKey(key);
    this.#op('get', key);
    const obj = this.objects.get(key);
    if (!obj) missingObject(this.location, key);
    checkRange(this.location, key, obj.length, range);
    const start = range?.offset ?? 0;
    return Buffer.from(obj.subarray(start, start + (range?.length ?? obj.length)));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkPrefix(prefix);
    this.#op('list', prefix);
    const snapshot = [...this.objects].filter(([k]) => k.startsWith(prefix));
    for (const [key, buf] of snapshot) yield { key, size: buf.length };
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    this.#op('delete', key);
    this.objects.delete(key);
  }

  async exists(key: string): Promise<boolean> {
    checkKey(key);
    this.#op('exists', key);
    return this.objects.has(key);
  }

  async close(): Promise<void> {}
}
