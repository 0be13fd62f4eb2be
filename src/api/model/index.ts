/**
 * The one model the API edge validates and serializes against: the SMS model (generated,
 * shapes.ts) plus Ferry's extension areas (ferry/). Operation names are unique across
 * both, so one handler table serves both target prefixes; a target names its API and an
 * operation of that API, never the other's.
 */
import { FERRY_AREAS, FERRY_TARGET_PREFIX } from './ferry/index.js';
import { OPERATIONS, SHAPES, TARGET_PREFIX } from './shapes.js';
import type { ModelShape } from './types.js';

type OperationModel = readonly [input: string, output: string, errors: readonly string[]];

function merge<T>(into: Record<string, T>, from: Readonly<Record<string, T>>, what: string): void {
  for (const [name, value] of Object.entries(from)) {
    // A clash would silently change an SMS shape or handler: fail at load instead.
    if (Object.hasOwn(into, name))
      throw new Error(`Ferry extension ${what} ${name} clashes with an existing one`);
    into[name] = value;
  }
}

const shapes: Record<string, ModelShape> = { ...SHAPES };
const ferryOperations: Record<string, OperationModel> = {};
for (const area of FERRY_AREAS) {
  merge(shapes, area.shapes, 'shape');
  merge(ferryOperations, area.operations, 'operation');
}
for (const name of Object.keys(ferryOperations)) {
  if (Object.hasOwn(OPERATIONS, name)) throw new Error(`Ferry extension operation ${name} clashes with SMS`);
}

export const ALL_SHAPES: Readonly<Record<string, ModelShape>> = shapes;
export const FERRY_OPERATIONS: Readonly<Record<string, OperationModel>> = ferryOperations;
export const ALL_OPERATIONS: Readonly<Record<string, OperationModel>> = { ...OPERATIONS, ...ferryOperations };
export { FERRY_TARGET_PREFIX, OPERATIONS, TARGET_PREFIX };

/** The operation an `X-Amz-Target` names, or undefined when no API has it. */
export function operationOfTarget(target: string): string | undefined {
  const dot = target.lastIndexOf('.');
  if (dot < 0) return undefined;
  const prefix = target.slice(0, dot);
  const name = target.slice(dot + 1);
  if (prefix === TARGET_PREFIX && Object.hasOwn(OPERATIONS, name)) return name;
  if (prefix === FERRY_TARGET_PREFIX && Object.hasOwn(ferryOperations, name)) return name;
  return undefined;
}
