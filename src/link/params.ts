/**
 * Checking what the other end of a link sends before it is used: every number is a safe
 * integer in a stated range, every string non-empty and bounded. A bad value is a coded
 * FERRY_INVALID_ARGUMENT answered to the caller, never an exception on this side.
 */
import { InvalidArgumentError } from '../errors/index.js';

export type Params = Record<string, unknown>;

/** Longest string a link parameter may be (ids, names, paths). */
export const MAX_PARAM_STRING = 1024;

export function int(p: Params, name: string, min: number, max: number): number {
  const v = p[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    throw new InvalidArgumentError(`link call: ${name} must be an integer in ${min}…${max}`, {
      member: name,
    });
  return v;
}

export function str(p: Params, name: string, max = MAX_PARAM_STRING): string {
  const v = p[name];
  if (typeof v !== 'string' || v.length === 0 || v.length > max)
    throw new InvalidArgumentError(`link call: ${name} must be a non-empty string (≤ ${max})`, {
      member: name,
    });
  return v;
}

export function optStr(p: Params, name: string, max = MAX_PARAM_STRING): string | undefined {
  return p[name] === undefined || p[name] === null ? undefined : str(p, name, max);
}

export function isRecord(v: unknown): v is Params {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
