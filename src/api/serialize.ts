/**
 * Responses through the model: only modelled members are emitted (the JS SDK passes
 * unknown nested members straight to callers), `null`/`undefined` members are omitted,
 * and timestamps go out as epoch seconds — JSON numbers, fractional when the
 * milliseconds are not zero (sms-api.md §2.5: an ISO string would be mis-read as 2024 s).
 */
import { ALL_OPERATIONS as OPERATIONS, ALL_SHAPES as SHAPES } from './model/index.js';

export function serializeOutput(operation: string, value: unknown): Record<string, unknown> {
  const op = OPERATIONS[operation];
  if (!op) return {};
  const out = shape(op[1], value);
  return typeof out === 'object' && out !== null && !Array.isArray(out)
    ? (out as Record<string, unknown>)
    : {};
}

function shape(ref: string, value: unknown): unknown {
  if (value === null || value === undefined) return undefined;
  switch (ref) {
    case 'string':
      return typeof value === 'string' ? value : undefined;
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value) ? value : undefined;
    case 'boolean':
      return typeof value === 'boolean' ? value : undefined;
    case 'timestamp':
      return typeof value === 'number' && Number.isFinite(value) ? value / 1000 : undefined;
  }
  const s = SHAPES[ref];
  if (!s) return undefined;
  switch (s.type) {
    case 'string':
      return typeof value === 'string' ? value : undefined;
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value) ? value : undefined;
    case 'boolean':
      return typeof value === 'boolean' ? value : undefined;
    case 'timestamp':
      return typeof value === 'number' ? value / 1000 : undefined;
    case 'list':
      return Array.isArray(value)
        ? value.map((v) => shape(s.member, v)).filter((v) => v !== undefined)
        : undefined;
    case 'structure': {
      if (typeof value !== 'object' || Array.isArray(value)) return undefined;
      const src = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const [name, r] of Object.entries(s.members)) {
        const v = shape(r, src[name]);
        if (v !== undefined) out[name] = v;
      }
      return out;
    }
  }
}
