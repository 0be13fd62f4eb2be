import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../../errors/index.js';
import {
  allocationDepth,
  allocationKind,
  combineDirtyAndAllocation,
  pushMergedFlags,
  toAllocationExtents,
  toDirtyExtents,
} from './extents.js';
import type { NbdExtent } from './wire.js';

const ext = (...l: [number, number, number][]): NbdExtent[] =>
  l.map(([offset, length, flags]) => ({ offset, length, flags }));

test('base:allocation flags map to data / zero / unallocated', () => {
  assert.equal(allocationKind(0), 'data');
  assert.equal(allocationKind(1), 'data'); // a hole that does not promise zeros must be read
  assert.equal(allocationKind(2), 'zero');
  assert.equal(allocationKind(3), 'unallocated');
  assert.equal(allocationKind(0xf0), 'data');
  assert.deepEqual(toAllocationExtents(ext([0, 10, 0], [10, 5, 1], [15, 5, 3], [20, 5, 3], [25, 5, 2])), [
    { offset: 0, length: 15, kind: 'data' },
    { offset: 15, length: 10, kind: 'unallocated' },
    { offset: 25, length: 5, kind: 'zero' },
  ]);
  assert.equal(allocationDepth(0), 0);
  assert.equal(allocationDepth(2), 2);
});

test('dirty bitmap: dirty → data, clean → unchanged; merged', () => {
  assert.deepEqual(toDirtyExtents(ext([0, 10, 0], [10, 10, 1], [20, 10, 1], [30, 5, 2])), [
    { offset: 0, length: 10, kind: 'unchanged' },
    { offset: 10, length: 20, kind: 'data' },
    { offset: 30, length: 5, kind: 'unchanged' },
  ]);
  const out: NbdExtent[] = [];
  for (const e of ext([0, 1, 1], [1, 1, 1], [3, 1, 1])) pushMergedFlags(out, e);
  assert.deepEqual(out, ext([0, 2, 1], [3, 1, 1]));
});

test('dirty ranges take their allocation kind; clean ones stay unchanged; spans must match', () => {
  const dirty = ext([0, 100, 0], [100, 200, 1], [300, 100, 0]);
  const alloc = ext([0, 150, 0], [150, 100, 3], [250, 30, 2], [280, 120, 0]);
  assert.deepEqual(combineDirtyAndAllocation(dirty, alloc), [
    { offset: 0, length: 100, kind: 'unchanged' },
    { offset: 100, length: 50, kind: 'data' },
    { offset: 150, length: 100, kind: 'unallocated' },
    { offset: 250, length: 30, kind: 'zero' },
    { offset: 280, length: 20, kind: 'data' },
    { offset: 300, length: 100, kind: 'unchanged' },
  ]);
  assert.throws(
    () => combineDirtyAndAllocation(dirty, ext([0, 399, 0])),
    (e: unknown) => FerryError.is(e) && e.code === 'FERRY_INVALID_ARGUMENT',
  );
});
