/**
 * Gathers small contiguous writes into large ones before they reach a sink. Writers
 * emit one block (often 64 KiB) at a time; a syscall per block would cost more than
 * the copy itself, so contiguous blocks are flushed together up to `limitBytes`.
 */
import type { BlockSink } from './block-sink.js';

export class CoalescingWriter {
  readonly #sink: BlockSink;
  readonly #limit: number;
  #start = 0;
  #parts: Buffer[] = [];
  #bytes = 0;

  constructor(sink: BlockSink, limitBytes = 4 * 1024 * 1024) {
    this.#sink = sink;
    this.#limit = limitBytes;
  }

  /** End offset of what has been queued (written or pending). */
  get end(): number {
    return this.#start + this.#bytes;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (this.#bytes > 0 && offset !== this.#start + this.#bytes) await this.flush();
    if (this.#bytes === 0) this.#start = offset;
    const last = this.#parts[this.#parts.length - 1];
    if (last && last.buffer === data.buffer && last.byteOffset + last.length === data.byteOffset) {
      // Consecutive views of one read buffer (the pipeline's chunks): widen the view, no copy.
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

  async flush(): Promise<void> {
    if (this.#bytes === 0) return;
    const parts = this.#parts;
    const start = this.#start;
    const bytes = this.#bytes;
    this.#parts = [];
    this.#start += bytes;
    this.#bytes = 0;
    if (parts.length === 1) await this.#sink.write(start, parts[0] as Buffer);
    else if (this.#sink.writev) await this.#sink.writev(start, parts);
    else await this.#sink.write(start, Buffer.concat(parts, bytes));
  }
}
