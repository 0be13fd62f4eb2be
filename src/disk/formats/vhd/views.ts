/**
 * Zero-copy write coalescing. The pipeline hands the writer consecutive slices of one
 * read buffer (64 KiB views into a 4 MiB chunk); when a write continues the previous one
 * both in the file and in memory, the two views are joined into one view of the same
 * memory instead of being copied into a new buffer (what io/coalesce.ts does), so data
 * reaches the sink with one large write and no extra copy. Anything else flushes first.
 */
import type { BlockSink } from '../../io/block-sink.js';

const LIMIT = 8 * 1024 * 1024;

export class ViewCoalescer {
  readonly #sink: BlockSink;
  #start = 0;
  #pending: Buffer | undefined;

  constructor(sink: BlockSink) {
    this.#sink = sink;
  }

  /** End offset of everything queued so far (written or pending). */
  get end(): number {
    return this.#pending ? this.#start + this.#pending.length : this.#sink.position;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    const p = this.#pending;
    if (
      p &&
      offset === this.#start + p.length &&
      data.buffer === p.buffer &&
      data.byteOffset === p.byteOffset + p.length &&
      p.length + data.length <= LIMIT
    ) {
      this.#pending = Buffer.from(p.buffer, p.byteOffset, p.length + data.length);
      return;
    }
    await this.flush();
    this.#start = offset;
    this.#pending = data;
  }

  async flush(): Promise<void> {
    const p = this.#pending;
    if (!p) return;
    this.#pending = undefined;
    await this.#sink.write(this.#start, p);
  }
}
