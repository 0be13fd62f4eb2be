/** Terminal progress bar on stderr: percent, bytes, rate, ETA; redrawn at most 10×/s. */
import type { ProgressObserver, ProgressSnapshot } from '../disk/index.js';
import { formatBytes } from './output.js';

export class ProgressBar implements ProgressObserver {
  readonly #label: string;
  readonly #showRead: boolean;
  #last = 0;
  #drawn = false;

  /** `showRead: false` for progress that has no separate bytes-read figure (a remote run). */
  constructor(label: string, options: { showRead?: boolean } = {}) {
    this.#label = label;
    this.#showRead = options.showRead ?? true;
  }

  update(s: ProgressSnapshot): void {
    const now = performance.now();
    if (now - this.#last < 100 && s.done < s.total) return;
    this.#last = now;
    this.#drawn = true;
    process.stderr.write('\r' + renderProgress(this.#label, s, this.#showRead) + '\x1b[K');
  }

  /** Erases the bar (to print a line); the next update draws it again. */
  clear(): void {
    if (this.#drawn) process.stderr.write('\r\x1b[K');
    this.#drawn = false;
    this.#last = 0;
  }

  /** Ends the bar's line (once; later calls do nothing). */
  end(): void {
    if (this.#drawn) process.stderr.write('\n');
    this.#drawn = false;
  }
}

export function renderProgress(label: string, s: ProgressSnapshot, showRead = true): string {
  const pct = s.total > 0 ? s.done / s.total : 1;
  const width = 24;
  const fill = Math.round(pct * width);
  const eta = s.etaMs === undefined ? '--:--' : formatDuration(s.etaMs);
  return (
    `${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(pct * 100).toFixed(1).padStart(5)}% ` +
    `${formatBytes(s.done)}/${formatBytes(s.total)} ${showRead ? `read ${formatBytes(s.bytesRead)} ` : ''}` +
    `${formatBytes(s.rate)}/s ETA ${eta}`
  );
}

export function formatDuration(ms: number): string {
  const t = Math.round(ms / 1000);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** A bar when stderr is a terminal (or forced), nothing otherwise. */
export function progressFor(label: string, flag: boolean | undefined): ProgressBar | undefined {
  const on = flag ?? Boolean(process.stderr.isTTY);
  return on ? new ProgressBar(label) : undefined;
}
