/**
 * The one write path of every format writer: gathers contiguous writes into large ones
 * before they reach a sink, without copying data. Writers emit one block (often 64 KiB)
 * or cluster at a time; a syscall per block would cost more than the copy itself.
 *
 * - Consecutive views of one buffer (the pipeline reads 4 MiB and hands it over in blocks)
 *   that also continue in the file are joined back into one view of the same memory.
 * - Anything else contiguous in the file is gathered and written with one gather write
 *   (`writev`) when the sink has one, else copied together.
 * - One write is in flight at a time, on any sink: it runs (in libuv's pool) while the
 *   writer gathers the next one. More would not help a file: writes to one file take its
 *   inode lock in turn, and waiters spin on it (`rwsem_spin_on_owner` was a fifth of a
 *   qcow2 → raw convert's CPU with four in flight, docs/benchmarks.md).
 * - With `pool`, every view is released to it once written (io/buffer-pool.ts): the writer
 *   promises the pipeline it gives back what it was lent.
 *
 * The writer owns what it passes to `write`: it must not change a buffer afterwards.
 */
import type { BufferPool } from './buffer-pool.js';
import type { BlockSink } from './block-sink.js';

/** Bytes gathered before a flush starts. */
const DEFAULT_LIMIT_BYTES = 4 * 1024 * 1024;

export interface CoalescingOptions {
  readonly limitBytes?: number;
  /** Release each written view to this pool (only for views lent by the pipeline). */
  readonly pool?: BufferPool;
}

export class CoalescingWriter {
  readonly #sink: BlockSink;
  readonly #limit: number;
  readonly #pool: BufferPool | undefined;
  /** The write in flight, if any. */
  #inFlight: Promise<void> | undefined;
  #start = 0;
  #parts: Buffer[] = [];
  #bytes = 0;
  #written: number;

  constructor(sink: BlockSink, options: CoalescingOptions = {}) {
    this.#sink = sink;
    this.#limit = options.limitBytes ?? DEFAULT_LIMIT_BYTES;
    this.#pool = options.pool;
    this.#written = sink.position;
  }

  /** End offset of what has been queued last (written, in flight or pending). */
  get end(): number {
    return this.#bytes > 0 ? this.#start + this.#bytes : this.#written;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (this.#bytes > 0 && offset !== this.#start + this.#bytes) await this.flush();
    if (this.#bytes === 0) this.#start = offset;
    const last = this.#parts[this.#parts.length - 1];
    if (last && last.buffer === data.buffer && last.byteOffset + last.length === data.byteOffset) {
      this.#parts[this.#parts.length - 1] = Buffer.from(
        last.buffer,
        last.byteOffset,
        last.length + data.length,
      );
    } else {
      this.#parts.push(data);
    }
    this.#bytes += data.length;
    if (this.#bytes >= this.#limit) await this.flush();
  }

  /** Starts writing what is gathered once the previous write is done; does not wait for it. */
  async flush(): Promise<void> {
    if (this.#bytes === 0) return;
    const parts = this.#parts;
    const start = this.#start;
    this.#written = start + this.#bytes;
    this.#parts = [];
    this.#bytes = 0;
    await this.#settle();
    const p = this.#writeParts(start, parts);
    p.catch(() => {}); // surfaced by the next flush or drain()
    this.#inFlight = p;
  }

  /** Flushes and waits for every write: the output is on the sink when it resolves. */
  async drain(): Promise<void> {
    await this.flush();
    await this.#settle();
  }

  async #settle(): Promise<void> {
    const p = this.#inFlight;
    this.#inFlight = undefined;
    await p;
  }

  async #writeParts(start: number, parts: Buffer[]): Promise<void> {
    if (parts.length === 1) await this.#sink.write(start, parts[0] as Buffer);
    else if (this.#sink.writev) await this.#sink.writev(start, parts);
    else await this.#sink.write(start, Buffer.concat(parts));
    if (this.#pool) for (const part of parts) this.#pool.release(part);
  }
}
