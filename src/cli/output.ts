/**
 * How the CLI reports: results on stdout, errors as one coded line on stderr, exit codes
 * by error kind (stable; scripts and the held-out corpus rely on them). Never a stack
 * trace unless FERRY_DEBUG=1.
 */
import { toFerryError, type ErrorKind, type FerryError } from '../errors/index.js';

export const EXIT_CODES: Readonly<Record<ErrorKind, number>> = {
  'invalid-argument': 2,
  unsupported: 3,
  corrupt: 4,
  'too-large': 5,
  refused: 6,
  'not-found': 7,
  io: 8,
  aborted: 130,
  internal: 70,
};

export function reportError(err: unknown, json: boolean): number {
  const fe: FerryError = toFerryError(err);
  if (json) {
    process.stderr.write(JSON.stringify({ error: fe.toJSON() }) + '\n');
  } else {
    process.stderr.write(`ferry: ${fe.code}: ${fe.message}\n`);
  }
  if (process.env.FERRY_DEBUG === '1') {
    const cause = (fe as Error & { cause?: unknown }).cause;
    process.stderr.write(`${fe.stack ?? ''}\n${cause instanceof Error ? (cause.stack ?? '') : ''}\n`);
  }
  return EXIT_CODES[fe.kind];
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function writeJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}
