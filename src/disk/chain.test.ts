import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LayeredDisk } from './chain.js';
import type { LayerExtent } from './extent.js';
import type { DiskLayer, LayerInfo } from './layer.js';
import { segments } from './pipeline/chunks.js';
import { checksumDisk } from './pipeline/checksum.js';
import { createHash } from 'node:crypto';

/** A layer described by a byte map: '.' unallocated, '0' zero, other chars = data byte. */
function layer(pattern: string, unit = 512): DiskLayer {
  const info: LayerInfo = {
    format: 'raw',
    subformat: 'test',
    virtualSize: pattern.length * unit,
    clusterSize: unit,
    fileSize: 0,
    files: [],
    warnings: [],
    details: {},
  };
  const kindAt = (i: number): LayerExtent['kind'] =>
    pattern[i] === '.' ? 'unallocated' : pattern[i] === '0' ? 'zero' : 'data';
  return {
    info,
    async map(offset, length) {
      const out: LayerExtent[] = [];
      for (let pos = offset; pos < offset + length;) {
        const i = Math.floor(pos / unit);
        const end = Math.min(offset + length, (i + 1) * unit);
        const k = kindAt(i);
        const last = out[out.length - 1];
        if (last && last.kind === k) out[out.length - 1] = { ...last, length: last.length + end - pos };
        else out.push({ offset: pos, length: end - pos, kind: k });
        pos = end;
      }
      return out;
    },
    async read(offset, length) {
      const b = Buffer.alloc(length);
      for (let i = 0; i < length; i++) {
        const c = pattern[Math.floor((offset + i) / unit)] as string;
        b[i] = c === '.' || c === '0' ? 0 : c.charCodeAt(0);
      }
      return b;
    },
    async close() {},
  };
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

test('unallocated falls through to the parent; zero in a child hides parent data', async () => {
  const disk = new LayeredDisk([layer('a.0.'), layer('bbbb')], ['top', 'base']);
  const map = await all(disk.map());
  assert.deepEqual(
    map.map((e) => [e.offset / 512, e.length / 512, e.kind, e.depth, e.source]),
    [
      [0, 1, 'data', 0, 'top'],
      [1, 1, 'data', 1, 'base'],
      [2, 1, 'zero', 0, 'top'],
      [3, 1, 'data', 1, 'base'],
    ],
  );
  const bytes = await disk.read(0, 2048);
  assert.equal(bytes[0], 'a'.charCodeAt(0));
  assert.equal(bytes[512], 'b'.charCodeAt(0));
  assert.equal(bytes[1024], 0);
  assert.equal(bytes[1536], 'b'.charCodeAt(0));
});

test('a parent smaller than its child reads as zeros past its end', async () => {
  const disk = new LayeredDisk([layer('....'), layer('bb')], ['top', 'base']);
  const map = await all(disk.map());
  assert.deepEqual(
    map.map((e) => [e.offset / 512, e.length / 512, e.kind, e.depth]),
    [
      [0, 2, 'data', 1],
      [2, 2, 'unallocated', 2],
    ],
  );
  const bytes = await disk.read(512, 1024);
  assert.equal(bytes[0], 'b'.charCodeAt(0));
  assert.equal(bytes[600], 0);
});

test('segments align stored ranges to blocks and split long runs', async () => {
  const disk = new LayeredDisk([layer('..a.......bbbb..', 512)], ['x']);
  const segs = await all(segments(disk, 2048, 2048));
  assert.deepEqual(
    segs.map((s) => [s.offset / 512, s.length / 512, s.stored]),
    [
      [0, 4, true],
      [4, 4, false],
      [8, 4, true],
      [12, 4, true],
    ],
  );
});

test('checksum hashes zeros for unallocated space without reading it', async () => {
  const l = layer('a..b');
  let reads = 0;
  const read = l.read.bind(l);
  l.read = async (o, n) => {
    reads += n;
    return read(o, n);
  };
  const disk = new LayeredDisk([l], ['x']);
  const expected = createHash('sha256')
    .update(await read(0, 2048))
    .digest('hex');
  assert.equal(await checksumDisk(disk), expected);
  assert.ok(reads <= 2048, `read ${reads}`);
});
