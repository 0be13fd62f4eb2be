/**
 * The three ways a qcow2 input fails, as coded errors whose details always say which
 * file, field and value: *corrupt* (violates the spec), *unsupported* (valid, not
 * handled), *too large* (beyond a documented limit).
 */
import {
  ImageCorruptError,
  ImageTooLargeError,
  ImageTruncatedError,
  ImageUnsupportedError,
  type FerryError,
} from '../../../errors/index.js';

type Value = string | number | bigint | boolean;

function details(field: string, value: Value | undefined, extra: Record<string, number | string> = {}) {
  return {
    format: 'qcow2',
    field,
    ...(value === undefined ? {} : { value: typeof value === 'bigint' ? `0x${value.toString(16)}` : value }),
    ...extra,
  };
}

export function corrupt(
  file: string,
  field: string,
  message: string,
  value?: Value,
  extra?: Record<string, number | string>,
): FerryError {
  return new ImageCorruptError(`${file}: qcow2 ${message}`, details(field, value, extra));
}

export function unsupported(
  file: string,
  field: string,
  message: string,
  value?: Value,
  extra?: Record<string, number | string>,
): FerryError {
  return new ImageUnsupportedError(`${file}: qcow2 ${message}`, details(field, value, extra));
}

export function tooLarge(
  file: string,
  field: string,
  message: string,
  value: Value,
  limit: number,
): FerryError {
  return new ImageTooLargeError(`${file}: qcow2 ${message}`, details(field, value, { limit }));
}

/** A table or cluster the image refers to lies (partly) beyond the end of its file. */
export function pastEnd(
  file: string,
  field: string,
  what: string,
  offset: number,
  length: number,
  size: number,
): FerryError {
  return new ImageTruncatedError(
    `${file}: qcow2 ${what} at ${offset} (+${length} bytes) is past the end of the file (${size} bytes)`,
    details(field, offset, { length, size }),
  );
}
