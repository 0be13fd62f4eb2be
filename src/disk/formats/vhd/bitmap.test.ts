import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bitmapRuns, classifyBitmap, sectorSet } from './bitmap.js';
import { mapRange, type BlockState } from './map.js';

function runs(bits: Buffer, first: number, end: number): [number, number, boolean][] {
  const out: [number, number, boolean][] = [];
  bitmapRuns(bits, first, end, (s, e, set) => out.push([s, e, set]));
  return out;
}

test('bitmaps: classification, MSB-first bit order and runs', () => {
  assert.equal(classifyBitmap(Buffer.alloc(512, 0xff)), 'full');
  assert.equal(classifyBitmap(Buffer.alloc(512, 0)), 'empty');
  assert.equal(classifyBitmap(Buffer.from([0xff, 0x7f])), 'mixed');
  const bits = Buffer.from([0x80, 0x00, 0xff, 0xff, 0x0f]);
  assert.equal(sectorSet(bits, 0), true);
  assert.equal(sectorSet(bits, 1), false);
  assert.deepEqual(runs(bits, 0, 40), [
    [0, 1, true],
    [1, 16, false],
    [16, 32, true],
    [32, 36, false],
    [36, 40, true],
  ]);
  assert.deepEqual(runs(bits, 17, 20), [[17, 20, true]]);
  assert.deepEqual(runs(bits, 5, 5), []);
});

test('map: unallocated, full, empty and mixed blocks become merged tagged extents', () => {
  const bs = 8192; // 16 sectors
  const states: BlockState[] = [
    { kind: 'full', dataOffset: 10_000 },
    { kind: 'full', dataOffset: 10_000 + bs }, // contiguous in the file: merges
    { kind: 'unallocated' },
    { kind: 'empty', dataOffset: 50_000 },
    { kind: 'mixed', dataOffset: 90_000, bits: Buffer.from([0xf0, 0x01]) },
  ];
  const dyn = mapRange(0, 5 * bs, { blockSize: bs, clearKind: 'zero' }, (b) => states[b] as BlockState);
  assert.deepEqual(dyn, [
    { offset: 0, length: 2 * bs, kind: 'data', fileOffset: 10_000 },
    { offset: 2 * bs, length: bs, kind: 'unallocated' },
    { offset: 3 * bs, length: bs, kind: 'zero' },
    { offset: 4 * bs, length: 2048, kind: 'data', fileOffset: 90_000 },
    { offset: 4 * bs + 2048, length: 11 * 512, kind: 'zero' },
    { offset: 4 * bs + 15 * 512, length: 512, kind: 'data', fileOffset: 90_000 + 15 * 512 },
  ]);
  const diff = mapRange(
    4 * bs + 100,
    3000,
    { blockSize: bs, clearKind: 'unallocated' },
    (b) => states[b] as BlockState,
  );
  assert.deepEqual(diff, [
    { offset: 4 * bs + 100, length: 1948, kind: 'data', fileOffset: 90_100 },
    { offset: 4 * bs + 2048, length: 1052, kind: 'unallocated' },
  ]);
});
