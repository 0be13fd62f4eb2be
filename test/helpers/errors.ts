/**
 * Assertions on coded errors, shared by unit and integration tests: what a call threw (or
 * a promise rejected with) must be a FerryError, and tests compare its code.
 */
import assert from 'node:assert/strict';
import { FerryError } from '../../src/errors/index.js';

/** The code of the FerryError `fn` throws, or 'no error' when it returns. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(FerryError.is(err), String(err));
    return err.code;
  }
  return 'no error';
}

/** The FerryError `fn` throws; fails when it returns. */
export function errorOf(fn: () => unknown): FerryError {
  try {
    fn();
  } catch (err) {
    assert.ok(FerryError.is(err), String(err));
    return err;
  }
  assert.fail('expected an error');
}

/** The FerryError `p` rejects with, which must carry `code`; fails when it resolves. */
export async function rejectsWith(p: Promise<unknown>, code: string): Promise<FerryError> {
  try {
    await p;
  } catch (err) {
    assert.ok(FerryError.is(err), String(err));
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}
