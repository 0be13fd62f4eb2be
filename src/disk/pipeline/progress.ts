/**
 * Progress of a long operation over a disk: position in the virtual disk, bytes actually
 * read, rate and ETA. The pipeline reports into a ProgressObserver; the CLI renders it as
 * a bar, the API/console will poll snapshots.
 */
export interface ProgressSnapshot {
  /** Virtual bytes handled (read, or skipped as zero). */
  readonly done: number;
  readonly total: number;
  /** Bytes actually read from the source files. */
  readonly bytesRead: number;
  readonly elapsedMs: number;
  /** Virtual bytes per second since start. */
  readonly rate: number;
  /** Estimated milliseconds left, undefined until there is a rate. */
  readonly etaMs: number | undefined;
}

export interface ProgressObserver {
  update(snapshot: ProgressSnapshot): void;
}

export class ProgressTracker {
  readonly #observer: ProgressObserver | undefined;
  readonly #total: number;
  readonly #start = performance.now();
  #done = 0;
  #read = 0;

  constructor(total: number, observer?: ProgressObserver) {
    this.#total = total;
    this.#observer = observer;
  }

  advance(position: number, bytesRead: number): void {
    this.#done = position;
    this.#read += bytesRead;
    this.#observer?.update(this.snapshot());
  }

  snapshot(): ProgressSnapshot {
    const elapsedMs = performance.now() - this.#start;
    const rate = elapsedMs > 0 ? (this.#done / elapsedMs) * 1000 : 0;
    const etaMs = rate > 0 ? ((this.#total - this.#done) / rate) * 1000 : undefined;
    return { done: this.#done, total: this.#total, bytesRead: this.#read, elapsedMs, rate, etaMs };
  }
}
