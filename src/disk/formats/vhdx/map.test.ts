import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bitRuns } from './map.js';

test('bitRuns finds maximal runs, LSB first, across whole-byte skips', () => {
  const bm = Buffer.from([0b00000111, 0x00, 0x00, 0xff, 0xff, 0b10000000]);
  assert.deepEqual(
    [...bitRuns(bm, 0, 48)],
    [
      [0, 3, true],
      [3, 24, false],
      [24, 40, true],
      [40, 47, false],
      [47, 48, true],
    ],
  );
  assert.deepEqual([...bitRuns(bm, 1, 2)], [[1, 2, true]]);
  assert.deepEqual(
    [...bitRuns(bm, 5, 30)],
    [
      [5, 24, false],
      [24, 30, true],
    ],
  );
  assert.deepEqual([...bitRuns(bm, 7, 7)], []);
});
