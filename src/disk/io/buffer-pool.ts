/**
 * Recycled read buffers. A fresh 4 MiB buffer per read costs more than the read itself:
 * the kernel's copy into never-touched pages takes a page fault per 4 KiB, and glibc hands
 * freed large blocks back to the system, so every buffer is fresh again (measured: a third of
 * a raw → qcow2 convert's time, see docs/benchmarks.md). Buffers that go back to the pool
 * keep their pages.
 *
 * Ownership is counted in bytes, per underlying ArrayBuffer: `acquire` gives the caller
 * the whole buffer's worth; whoever hands a view on (the copy loop to a writer) `retain`s
 * the view's bytes first; every holder `release`s exactly what it holds, in one or several
 * views (a writer that joined adjacent views releases the joined view once). When the count
 * reaches zero the buffer is reused. Buffers the pool does not own are ignored by `retain`
 * and `release`, so a consumer can release whatever it was given. A consumer that never
 * releases only costs the reuse: the buffer is then collected like any other.
 *
 * Requests are served from power-of-two size classes (a view of the class's buffer): the
 * pipeline reads data runs of every length up to 4 MiB, and a pool keyed by exact size
 * reused almost nothing for a disk with short runs (half of a qcow2 → raw convert's page
 * faults were fresh read buffers). Rounding up wastes at most half of a buffer.
 */
import { InternalError } from '../../errors/index.js';

/** Idle buffers kept per pool, in bytes: a read-ahead window's worth. */
const DEFAULT_MAX_IDLE_BYTES = 64 * 1024 * 1024;
/** Smallest size class: smaller requests share it. */
const MIN_CLASS_BYTES = 64 * 1024;
/** Largest power-of-two class; larger (rare) requests get a buffer of their exact size. */
const MAX_CLASS_BYTES = 8 * 1024 * 1024;

function sizeClass(size: number): number {
  if (size > MAX_CLASS_BYTES) return size;
  let c = MIN_CLASS_BYTES;
  while (c < size) c *= 2;
  return c;
}

export class BufferPool {
  readonly #idle = new Map<number, Buffer[]>();
  readonly #held = new WeakMap<ArrayBufferLike, number>();
  readonly #maxIdle: number;
  #idleBytes = 0;

  constructor(maxIdleBytes = DEFAULT_MAX_IDLE_BYTES) {
    this.#maxIdle = maxIdleBytes;
  }

  /**
   * A buffer of exactly `size` bytes (contents undefined), owned by the caller: a view
   * from offset 0 of a buffer of the size's class.
   */
  acquire(size: number): Buffer {
    const cls = sizeClass(size);
    const reused = this.#idle.get(cls)?.pop();
    if (reused) this.#idleBytes -= cls;
    // allocUnsafeSlow: an ArrayBuffer of its own (never a slice of Node's shared pool).
    const buf = reused ?? Buffer.allocUnsafeSlow(cls);
    this.#held.set(buf.buffer, size);
    return size === cls ? buf : buf.subarray(0, size);
  }

  /** Adds a holder of `view`'s bytes (a no-op for buffers the pool does not own). */
  retain(view: Buffer): void {
    const held = this.#held.get(view.buffer);
    if (held !== undefined) this.#held.set(view.buffer, held + view.length);
  }

  /** Drops a holder of `view`'s bytes; the buffer is reused when nobody holds any. */
  release(view: Buffer): void {
    const held = this.#held.get(view.buffer);
    if (held === undefined) return;
    const left = held - view.length;
    if (left < 0) throw new InternalError('buffer pool: more bytes released than held');
    if (left > 0) {
      this.#held.set(view.buffer, left);
      return;
    }
    this.#held.delete(view.buffer);
    const whole = Buffer.from(view.buffer, 0, view.buffer.byteLength);
    if (this.#idleBytes + whole.length > this.#maxIdle) return;
    let list = this.#idle.get(whole.length);
    if (!list) this.#idle.set(whole.length, (list = []));
    list.push(whole);
    this.#idleBytes += whole.length;
  }
}

/** The process-wide pool the pipeline reads into. */
export const readPool = new BufferPool();
