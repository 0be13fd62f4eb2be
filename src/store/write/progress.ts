/** Progress of a long store operation, reported as the disk engine's ProgressSnapshot. */
import type { ProgressObserver } from '../../disk/index.js';

export class ProgressCounter {
  readonly #total: number;
  readonly #observer: ProgressObserver | undefined;
  readonly #start = performance.now();
  #done = 0;
  #read = 0;

  constructor(total: number, observer?: ProgressObserver) {
    this.#total = total;
    this.#observer = observer;
  }

  advance(virtualBytes: number, bytesRead: number): void {
    this.#done += virtualBytes;
    this.#read += bytesRead;
    if (!this.#observer) return;
    const elapsedMs = performance.now() - this.#start;
    const rate = elapsedMs > 0 ? (this.#done / elapsedMs) * 1000 : 0;
    this.#observer.update({
      done: this.#done,
      total: this.#total,
      bytesRead: this.#read,
      elapsedMs,
      rate,
      etaMs: rate > 0 ? ((this.#total - this.#done) / rate) * 1000 : undefined,
    });
  }
}
