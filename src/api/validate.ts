/**
 * Request validation driven by the service model (model/shapes.ts) plus Ferry's policy
 * (policy.ts). The JS SDK validates nothing and the CLI only required members and `min`,
 * so the server checks everything, and answers with the model's exception names:
 *
 *   required member absent                    → FERRY_PARAMETER_MISSING
 *   enum, length, pattern, range, policy      → FERRY_INVALID_ARGUMENT
 *   wrong JSON type (string for a number, …)  → FERRY_API_SERIALIZATION
 *
 * Validated input is a fresh object with only modelled members (unknown ones are dropped,
 * as AWS JSON services do), `null` treated as absent, and timestamps converted from epoch
 * seconds to epoch milliseconds, the unit the control plane uses.
 */
import { InvalidArgumentError, ParameterMissingError, SerializationError } from '../errors/index.js';
import { ALL_OPERATIONS as OPERATIONS, ALL_SHAPES as SHAPES } from './model/index.js';
import type { ModelShape } from './model/types.js';
import {
  APP_ID_REQUIRED,
  INTEGER_BOUNDS,
  MAX_LIST_LENGTH,
  MAX_STRING_LENGTH,
  STRING_CAPS,
} from './policy.js';

const INT32_MAX = 2 ** 31 - 1;
const patterns = new Map<string, RegExp>();

export function validateInput(operation: string, body: unknown): Record<string, unknown> {
  const op = OPERATIONS[operation];
  if (!op) throw new InvalidArgumentError(`unknown operation ${operation}`);
  const shape = SHAPES[op[0]];
  if (!shape || shape.type !== 'structure') throw new InvalidArgumentError(`no input shape for ${operation}`);
  const extraRequired = APP_ID_REQUIRED.has(operation) ? ['appId'] : [];
  return structure(shape, body, '', extraRequired);
}

function structure(
  shape: Extract<ModelShape, { type: 'structure' }>,
  value: unknown,
  path: string,
  extraRequired: readonly string[] = [],
): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SerializationError(`${path || 'request body'}: expected a JSON object`, { member: path });
  }
  const input = value as Record<string, unknown>;
  for (const name of [...(shape.required ?? []), ...extraRequired]) {
    if (input[name] === undefined || input[name] === null) {
      throw new ParameterMissingError(`${join(path, name)} is required`, { member: join(path, name) });
    }
  }
  const out: Record<string, unknown> = {};
  for (const [name, ref] of Object.entries(shape.members)) {
    const v = input[name];
    if (v === undefined || v === null) continue;
    out[name] = member(ref, v, join(path, name), name);
  }
  return out;
}

function member(ref: string, value: unknown, path: string, name: string): unknown {
  switch (ref) {
    case 'string':
      return string({ type: 'string' }, value, path, name);
    case 'integer':
      return integer({ type: 'integer' }, value, path, name);
    case 'boolean':
      if (typeof value !== 'boolean') throw typeError(path, 'a boolean', value);
      return value;
    case 'timestamp':
      return timestamp(value, path);
  }
  const shape = SHAPES[ref];
  if (!shape) throw new InvalidArgumentError(`model has no shape ${ref}`);
  switch (shape.type) {
    case 'string':
      return string(shape, value, path, name);
    case 'integer':
      return integer(shape, value, path, name);
    case 'boolean':
      if (typeof value !== 'boolean') throw typeError(path, 'a boolean', value);
      return value;
    case 'timestamp':
      return timestamp(value, path);
    case 'list': {
      if (!Array.isArray(value)) throw typeError(path, 'a JSON array', value);
      const max = Math.min(shape.max ?? MAX_LIST_LENGTH, MAX_LIST_LENGTH);
      if (value.length < (shape.min ?? 0) || value.length > max) {
        throw new InvalidArgumentError(`${path}: list must have between ${shape.min ?? 0} and ${max} items`, {
          member: path,
          length: value.length,
        });
      }
      // List items inherit the member name for policy caps (e.g. appIds → app id strings).
      return value.map((v, i) => {
        if (v === null) throw typeError(`${path}[${i}]`, 'a value', v);
        return member(shape.member, v, `${path}[${i}]`, name);
      });
    }
    case 'structure':
      return structure(shape, value, path);
  }
}

function string(
  shape: Extract<ModelShape, { type: 'string' }>,
  value: unknown,
  path: string,
  name: string,
): string {
  if (typeof value !== 'string') throw typeError(path, 'a string', value);
  if (shape.enum) {
    if (!shape.enum.includes(value)) {
      throw new InvalidArgumentError(`${path}: ${quote(value)} is not one of ${shape.enum.join(', ')}`, {
        member: path,
      });
    }
    return value;
  }
  const max = shape.max ?? STRING_CAPS[name] ?? MAX_STRING_LENGTH;
  const min = shape.min ?? 0;
  if (value.length < min || value.length > max) {
    throw new InvalidArgumentError(`${path}: length ${value.length} is outside ${min}..${max}`, {
      member: path,
      length: value.length,
      min,
      max,
    });
  }
  if (shape.pattern && !regex(shape.pattern).test(value)) {
    throw new InvalidArgumentError(`${path}: ${quote(value)} does not match ${shape.pattern}`, {
      member: path,
    });
  }
  return value;
}

function integer(
  shape: Extract<ModelShape, { type: 'integer' }>,
  value: unknown,
  path: string,
  name: string,
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || Math.abs(value) > INT32_MAX) {
    throw typeError(path, 'a 32-bit integer', value);
  }
  const [pmin, pmax] = INTEGER_BOUNDS[name] ?? [-INT32_MAX - 1, INT32_MAX];
  const min = shape.min ?? pmin;
  const max = shape.max ?? pmax;
  if (value < min || value > max) {
    throw new InvalidArgumentError(`${path}: ${value} is outside ${min}..${max}`, {
      member: path,
      value,
      min,
      max,
    });
  }
  return value;
}

/** Epoch seconds (fractional allowed) → epoch milliseconds. */
function timestamp(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw typeError(path, 'epoch seconds (a number)', value);
  const ms = Math.round(value * 1000);
  // Years 1970..9999: anything else is a unit mistake (milliseconds sent as seconds).
  if (value < 0 || ms > Date.UTC(9999, 11, 31)) {
    throw new InvalidArgumentError(`${path}: ${value} is not a plausible time in epoch seconds`, {
      member: path,
    });
  }
  return ms;
}

function regex(pattern: string): RegExp {
  let r = patterns.get(pattern);
  if (!r) {
    r = new RegExp(pattern, 'u');
    patterns.set(pattern, r);
  }
  return r;
}

function typeError(path: string, expected: string, value: unknown): Error {
  const got = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
  return new SerializationError(`${path}: expected ${expected}, got ${got}`, { member: path, expected, got });
}

function join(path: string, name: string): string {
  return path ? `${path}.${name}` : name;
}

function quote(v: string): string {
  return JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}…` : v);
}
