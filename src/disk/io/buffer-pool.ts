/**
 * Recycled read buffers. A fresh 4 MiB buffer per read costs more than the read itself:
 * the kernel's copy into never-touched pages takes a page fault per 4 KiB, and glibc hands
 * freed large blocks back to the system, so every buffer is fresh again (measured: a third of
 * a raw → qcow2 convert's time, see docs/benchmarks.md). Buffers that go back to the pool
 * keep their pages.
 *
 * Requests up to SLAB_BYTES are carved one after the other out of a slab (views of one
 * 4 MiB buffer), so the memory the pool touches is about the bytes in flight, whatever
 * the mix of lengths: the pipeline reads data runs of every length up to 4 MiB, and buffers
 * per length (or per power-of-two class) each needed their own working set — 28 MiB of
 * fresh pages for a qcow2 → raw convert, where a page fault costs ~13 µs on a VM.
 * Larger requests get a buffer of their own, reused by exact size.
 *
 * Ownership is counted in bytes, per underlying ArrayBuffer: `acquire` gives the caller
 * its view's worth; whoever hands a view on (the copy loop to a writer) `retain`s the
 * view's bytes first; every holder `release`s exactly what it holds, in one or several
 * views (a writer that joined adjacent views releases the joined view once). The pool
 * holds the part of the slab it has not handed out until it moves to the next slab. When
 * the count reaches zero the buffer is reused. Buffers the pool does not own are ignored by
 * `retain` and `release`, so a consumer can release whatever it was given. A consumer that
 * never releases only costs the reuse: the buffer is then collected like any other.
 *
 * A view shares its ArrayBuffer with others: never transfer or detach it.
 */
import { InternalError } from '../../errors/index.js';

/** Idle buffers kept per pool, in bytes: a read-ahead window's worth. */
const DEFAULT_MAX_IDLE_BYTES = 64 * 1024 * 1024;
/** Slab size: the pipeline's largest read (chunks.ts). */
export const SLAB_BYTES = 4 * 1024 * 1024;

export class BufferPool {
  readonly #idle = new Map<number, Buffer[]>();
  readonly #held = new WeakMap<ArrayBufferLike, number>();
  readonly #maxIdle: number;
  #idleBytes = 0;
  /** The slab being carved, and how many of its bytes were handed out. */
  #slab: Buffer | undefined;
  #used = 0;

  constructor(maxIdleBytes = DEFAULT_MAX_IDLE_BYTES) {
    this.#maxIdle = maxIdleBytes;
  }

  /** A buffer of exactly `size` bytes (contents undefined), owned by the caller. */
  acquire(size: number): Buffer {
    if (size > SLAB_BYTES) {
      const buf = this.#take(size);
      this.#held.set(buf.buffer, size);
      return buf;
    }
    if (this.#slab && this.#used + size > SLAB_BYTES) this.#closeSlab();
    if (!this.#slab) {
      this.#slab = this.#take(SLAB_BYTES);
      this.#held.set(this.#slab.buffer, SLAB_BYTES);
      this.#used = 0;
    }
    const view = this.#slab.subarray(this.#used, this.#used + size);
    this.#used += size;
    // A full slab is closed at once: its last view may come back before the next acquire.
    if (this.#used === SLAB_BYTES) this.#closeSlab();
    return view;
  }

  /** Adds a holder of `view`'s bytes (a no-op for buffers the pool does not own). */
  retain(view: Buffer): void {
    const held = this.#held.get(view.buffer);
    if (held !== undefined) this.#held.set(view.buffer, held + view.length);
  }

  /** Drops a holder of `view`'s bytes; the buffer is reused when nobody holds any. */
  release(view: Buffer): void {
    this.#drop(view.buffer, view.length);
  }

  /** Gives up the pool's own hold on the rest of the current slab. */
  #closeSlab(): void {
    const slab = this.#slab as Buffer;
    this.#slab = undefined;
    this.#drop(slab.buffer, SLAB_BYTES - this.#used);
  }

  #drop(buffer: ArrayBufferLike, bytes: number): void {
    const held = this.#held.get(buffer);
    if (held === undefined) return;
    const left = held - bytes;
    if (left < 0) throw new InternalError('buffer pool: more bytes released than held');
    if (left > 0) {
      this.#held.set(buffer, left);
      return;
    }
    this.#held.delete(buffer);
    if (this.#idleBytes + buffer.byteLength > this.#maxIdle) return;
    let list = this.#idle.get(buffer.byteLength);
    if (!list) this.#idle.set(buffer.byteLength, (list = []));
    list.push(Buffer.from(buffer, 0, buffer.byteLength));
    this.#idleBytes += buffer.byteLength;
  }

  /** An idle buffer of exactly `size` bytes, or a new one. */
  #take(size: number): Buffer {
    const reused = this.#idle.get(size)?.pop();
    if (reused) {
      this.#idleBytes -= size;
      return reused;
    }
    // allocUnsafeSlow: an ArrayBuffer of its own (never a slice of Node's shared pool).
    return Buffer.allocUnsafeSlow(size);
  }
}

/** The process-wide pool the pipeline reads into. */
export const readPool = new BufferPool();
