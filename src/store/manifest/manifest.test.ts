import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { ID_BYTES } from '../layout.js';
import { TreeChecksum } from './checksum.js';
import { childCount, TreeBuilder, treeShape, ZERO_REF } from './tree.js';

test('tree shape: depth and node counts follow size, block size and fan-out', () => {
  assert.deepEqual(treeShape(0, 4096, 16).depth, 0);
  assert.equal(treeShape(1, 4096, 16).depth, 1);
  assert.equal(treeShape(16 * 4096, 4096, 16).depth, 1);
  const s = treeShape(16 * 4096 + 1, 4096, 16);
  assert.deepEqual(s.counts, [17, 2, 1]);
  assert.equal(s.lastBlockBytes, 1);
  assert.equal(childCount(s, 1, 1), 1);
  assert.equal(treeShape(64 * 1024 ** 4, 65536, 2048).depth, 3);
});

test('tree builder: zero subtrees cost nothing, nodes come out complete, seeding resumes', () => {
  const shape = treeShape(40 * 4096, 4096, 4 * 4);
  const stored: Buffer[] = [];
  const sink = (_level: number, content: Buffer) => {
    stored.push(content);
    return createHash('sha256').update(content).digest();
  };
  const pages: Buffer[] = [];
  const b = new TreeBuilder(shape, sink, (level, _i, ref) => level === 1 && pages.push(ref));
  b.pushZeroBlocks(16); // a whole zero page
  const id = randomBytes(ID_BYTES);
  for (let i = 0; i < 24; i++) b.pushBlockRef(i === 5 ? id : ZERO_REF);
  const root = b.finish();
  assert.deepEqual(pages[0], ZERO_REF);
  assert.deepEqual(pages[2], ZERO_REF, 'the last page (8 zero refs) is zero too');
  assert.equal(stored.length, 2, 'one data page and the root');
  assert.throws(() => b.pushBlockRef(id), /more references/);

  const again = new TreeBuilder(shape, sink);
  again.seedPages(pages.slice(0, 2));
  again.pushZeroBlocks(8);
  assert.deepEqual(again.finish(), root, 'seeded with the first pages, the same root');
  assert.throws(() => new TreeBuilder(shape, sink).finish(), /incomplete/);
});

test('checksum: block digests, bytes, zero shortcuts and resumed pages all agree', () => {
  const size = 37 * 4096 + 512;
  const shape = treeShape(size, 4096, 16);
  const data = Buffer.alloc(size);
  randomBytes(4096).copy(data, 4096 * 20);
  randomBytes(512).copy(data, size - 512);

  const bytes = new TreeChecksum(shape);
  bytes.update(data.subarray(0, 1000));
  bytes.update(data.subarray(1000, 4096 * 18 + 7));
  bytes.zeros(4096 * 20 - (4096 * 18 + 7));
  bytes.update(data.subarray(4096 * 20));
  const byBytes = bytes.digest();

  const pageDigests: Buffer[] = [];
  const blocks = new TreeChecksum(shape, (_p, d) => pageDigests.push(d));
  blocks.pushZeroBlocks(20);
  for (let o = 4096 * 20; o < size; o += 4096) {
    blocks.pushDigest(
      createHash('sha256')
        .update(data.subarray(o, Math.min(size, o + 4096)))
        .digest(),
    );
  }
  assert.equal(blocks.digest(), byBytes);

  const resumed = new TreeChecksum(shape);
  resumed.seedPages(pageDigests.slice(0, 2));
  resumed.update(data.subarray(32 * 4096));
  assert.equal(resumed.digest(), byBytes);

  const other = new TreeChecksum(treeShape(size, 4096, 32));
  other.update(data);
  assert.notEqual(other.digest(), byBytes, 'the fan-out is part of the checksum');
  assert.throws(() => new TreeChecksum(shape).digest(), /incomplete/);
});
