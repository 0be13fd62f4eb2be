/**
 * Sequential output for the writer, without copying data clusters. The pipeline reads
 * 4 MiB at a time and hands it over in blocks, so consecutive plain clusters are usually
 * adjacent views of one buffer: they are joined back into one view (no copy). Small
 * pieces (compressed clusters, L2 tables) are gathered and copied into one write, like
 * io/coalesce.ts does; large views go to the sink as they are. On a loaded machine the
 * copy CoalescingWriter makes of every plain cluster cost a third of a convert's time.
 */
import type { BlockSink } from '../../io/block-sink.js';

/** Bytes gathered before a flush. */
const FLUSH_BYTES = 4 * 1024 * 1024;
/** Views at least this large are written as they are; smaller ones are copied together. */
const DIRECT_BYTES = 256 * 1024;
/**
 * Flushes in flight: the sink writes run in libuv's pool while the writer prepares the
 * next clusters (positional writes to distinct ranges may overlap safely).
 */
const MAX_IN_FLIGHT = 4;

export class Appender {
  readonly #sink: BlockSink;
  #start = 0;
  #parts: Buffer[] = [];
  #bytes = 0;
  readonly #inFlight: Promise<void>[] = [];

  constructor(sink: BlockSink) {
    this.#sink = sink;
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
    if (this.#bytes >= FLUSH_BYTES) await this.flush();
  }

  /** Starts writing what is gathered; waits only when too many writes are in flight. */
  async flush(): Promise<void> {
    if (this.#bytes === 0) return;
    const parts = this.#parts;
    const start = this.#start;
    this.#start += this.#bytes;
    this.#parts = [];
    this.#bytes = 0;
    const p = this.#writeParts(start, parts);
    p.catch(() => {}); // surfaced when awaited below or in drain()
    this.#inFlight.push(p);
    while (this.#inFlight.length > MAX_IN_FLIGHT) await this.#inFlight.shift();
  }

  /** Flushes and waits for every write: the output is on the sink when it resolves. */
  async drain(): Promise<void> {
    await this.flush();
    while (this.#inFlight.length > 0) await this.#inFlight.shift();
  }

  async #writeParts(start: number, parts: Buffer[]): Promise<void> {
    let at = start;
    let small: Buffer[] = [];
    let smallBytes = 0;
    const flushSmall = async () => {
      if (smallBytes === 0) return;
      const buf = small.length === 1 ? (small[0] as Buffer) : Buffer.concat(small, smallBytes);
      const where = at;
      at += smallBytes;
      small = [];
      smallBytes = 0;
      await this.#sink.write(where, buf);
    };
    for (const part of parts) {
      if (part.length >= DIRECT_BYTES) {
        await flushSmall();
        await this.#sink.write(at, part);
        at += part.length;
      } else {
        small.push(part);
        smallBytes += part.length;
      }
    }
    await flushSmall();
  }
}
