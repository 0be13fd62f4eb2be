/**
 * A run's progress as the SMS API carries it: one string, `stageDetails.stageProgress`,
 * written by the server's run executor (progressText in src/control/runs/executor.ts):
 *
 *   45% (12.3 MiB of 100.0 MiB, 5.0 MiB/s, ETA 12s)
 *
 * parsed back into the numbers the progress bar draws. Anything else (a stage that reports
 * no bytes, "100%" once complete) is shown as it is.
 */
import type { ProgressSnapshot } from '../../disk/index.js';

const MIB = 1024 * 1024;
const PATTERN =
  /^(\d{1,3})% \((\d{1,12}(?:\.\d)?) MiB of (\d{1,12}(?:\.\d)?) MiB, (\d{1,12}(?:\.\d)?) MiB\/s(?:, ETA (\d{1,12})s)?\)$/;

export function parseStageProgress(text: string | undefined): ProgressSnapshot | undefined {
  const m = text === undefined ? null : PATTERN.exec(text);
  if (!m) return undefined;
  const total = Math.round(Number(m[3]) * MIB);
  // The byte figures have 0.1 MiB resolution; the percentage is exact (floored).
  const fromPct = Math.floor((Number(m[1]) / 100) * total);
  const done = Math.min(total, Math.max(Math.round(Number(m[2]) * MIB), fromPct));
  return {
    done,
    total,
    bytesRead: done,
    elapsedMs: 0,
    rate: Math.round(Number(m[4]) * MIB),
    etaMs: m[5] === undefined ? undefined : Number(m[5]) * 1000,
  };
}
