/** Thin wrapper over node:util parseArgs that turns its errors into coded ones. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InvalidArgumentError } from '../errors/index.js';
import { isFormatName, type FormatName } from '../disk/index.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export function parse<O extends Options>(argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message}\nusage: ${usage}`);
  }
}

export function needPositionals(positionals: string[], n: number, usage: string): string[] {
  if (positionals.length !== n) {
    throw new InvalidArgumentError(`expected ${n} argument(s), got ${positionals.length}\nusage: ${usage}`);
  }
  return positionals;
}

export function formatOption(value: string | undefined, what: string): FormatName | undefined {
  if (value === undefined) return undefined;
  if (!isFormatName(value)) throw new InvalidArgumentError(`unknown ${what} format ${JSON.stringify(value)}`);
  return value;
}

/** Parses sizes like 65536, 64K, 2M (binary units). */
export function sizeOption(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)([KMGT]?)i?B?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(value)}`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[(m[2] ?? '').toUpperCase()] ?? 1;
  const n = Number(m[1]) * mult;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${what} too large`);
  return n;
}

/** Parses "--threads N" style non-negative integers. */
export function intOption(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,15}$/.test(value))
    throw new InvalidArgumentError(`${what} must be a non-negative integer, got ${value}`);
  return Number(value);
}

/** Parses durations like 500ms, 90s, 15m, 12h. */
export function durationOption(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,9})(ms|s|m|h)$/.exec(value.trim());
  if (!m)
    throw new InvalidArgumentError(
      `invalid ${what} ${JSON.stringify(value)} (use e.g. 500ms, 90s, 15m, 12h)`,
    );
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

/** Options every image command takes. */
export const COMMON_IMAGE_OPTIONS = {
  json: { type: 'boolean' },
  format: { type: 'string', short: 'f' },
  'allow-external-references': { type: 'boolean' },
  'no-backing': { type: 'boolean' },
} as const satisfies Options;
