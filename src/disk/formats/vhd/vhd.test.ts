import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../../errors/index.js';
import { MemorySource } from '../../io/byte-source.js';
import type { DiskLayer, OpenContext } from '../../layer.js';
import { F, PLATFORM } from './layout.js';
import { vhdDriver } from './index.js';
import {
  flipByte,
  patchFooter,
  setBitmap,
  toDifferencing,
  uniqueIdOf,
  utf16le,
  writeVhd,
} from './testkit.js';

const MiB = 1 << 20;
const ctx: OpenContext = {
  openReference: () => Promise.reject(new Error('VHD opens no references itself')),
};

function fill(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return b;
}

async function open(img: Buffer): Promise<DiskLayer> {
  const src = new MemorySource(img, 'disk.vhd');
  assert.equal(await vhdDriver.probe(src), true);
  return vhdDriver.open(src, ctx);
}

async function openError(img: Buffer): Promise<string> {
  try {
    await vhdDriver.open(new MemorySource(img, 'disk.vhd'), ctx);
  } catch (err) {
    assert.ok(FerryError.is(err), String(err));
    return err.code;
  }
  return 'opened';
}

const SIZE = 10 * MiB + 512;
const A = fill(64 * 1024, 1);
const B = fill(3 * 64 * 1024, 2);
const BLOCKS: [number, Buffer][] = [
  [0, A],
  [4 * MiB - 64 * 1024, B], // spans two 2 MiB blocks
];
function expected(size: number): Buffer {
  const e = Buffer.alloc(size);
  for (const [o, d] of BLOCKS) d.copy(e, o);
  return e;
}

test('dynamic: written, probed, opened, mapped and read back exactly', async () => {
  const img = await writeVhd(SIZE, BLOCKS);
  const layer = await open(img);
  assert.equal(layer.info.subformat, 'dynamic');
  assert.equal(layer.info.virtualSize, SIZE);
  assert.equal(layer.info.clusterSize, 2 * MiB);
  assert.equal(layer.info.details.sizeSource, 'current_size');
  assert.equal(layer.info.details.creatorApp, 'qem2');
  assert.equal(layer.info.id, uniqueIdOf(img));
  assert.equal(layer.info.parent, undefined);
  assert.deepEqual(layer.info.warnings, []);
  assert.deepEqual(await layer.read(0, SIZE), expected(SIZE));
  const map = await layer.map(0, SIZE);
  assert.deepEqual(
    map.map((e) => [e.offset, e.length, e.kind]),
    [
      [0, 2 * MiB, 'data'],
      [2 * MiB, 2 * MiB, 'data'],
      [4 * MiB, 2 * MiB, 'data'],
      [6 * MiB, SIZE - 6 * MiB, 'unallocated'],
    ],
  );
  // Unaligned reads inside and across blocks.
  assert.deepEqual(
    await layer.read(4 * MiB - 1000, 3000),
    expected(SIZE).subarray(4 * MiB - 1000, 4 * MiB + 2000),
  );
  // Only blocks holding data occupy the file: 3 blocks + metadata.
  assert.equal(img.length, 512 + 1024 + 512 + 3 * (512 + 2 * MiB) + 512);
  await layer.close();
});

test('dynamic with 512 KiB blocks and a partial last block', async () => {
  const size = 3 * MiB + 4096;
  const img = await writeVhd(size, [[3 * MiB, fill(4096, 5)]], { clusterSize: 512 * 1024 });
  const layer = await open(img);
  assert.equal(layer.info.clusterSize, 512 * 1024);
  const data = await layer.read(0, size);
  assert.deepEqual(data.subarray(3 * MiB), fill(4096, 5));
  assert.ok(data.subarray(0, 3 * MiB).equals(Buffer.alloc(3 * MiB)));
});

test('dynamic: blocks stored out of order in the file are read exactly', async () => {
  const a = fill(2 * MiB, 7);
  const b = fill(2 * MiB, 8);
  // Written backwards: block 1 lands first in the file, block 0 after it.
  const img = await writeVhd(4 * MiB, [
    [2 * MiB, b],
    [0, a],
  ]);
  const layer = await open(img);
  assert.deepEqual(await layer.read(0, 4 * MiB), Buffer.concat([a, b]));
  assert.deepEqual(
    await layer.read(2 * MiB - 512, 1024),
    Buffer.concat([a.subarray(-512), b.subarray(0, 512)]),
  );
});

test('fixed: 1 MiB-aligned size, footer only at the end, also written to a pipe', async () => {
  for (const seekable of [true, false]) {
    const img = await writeVhd(SIZE, BLOCKS, { subformat: 'fixed', seekable });
    assert.equal(img.length, 11 * MiB + 512);
    assert.notEqual(img.toString('latin1', 0, 8), 'conectix');
    const layer = await open(img);
    assert.equal(layer.info.subformat, 'fixed');
    assert.equal(layer.info.virtualSize, 11 * MiB);
    assert.deepEqual(await layer.read(0, 11 * MiB), expected(11 * MiB));
    assert.deepEqual(await layer.map(0, 11 * MiB), [
      { offset: 0, length: 11 * MiB, kind: 'data', fileOffset: 0 },
    ]);
  }
});

test('probe: conectix at 0, or a valid footer at the end; garbage is not a VHD', async () => {
  const probe = (b: Buffer) => vhdDriver.probe(new MemorySource(b));
  assert.equal(await probe(Buffer.alloc(0)), false);
  assert.equal(await probe(Buffer.alloc(4096)), false);
  const fixed = await writeVhd(MiB, [], { subformat: 'fixed' });
  assert.equal(await probe(fixed), true);
  const badSum = Buffer.from(fixed);
  flipByte(badSum, fixed.length - 512 + F.timestamp);
  assert.equal(await probe(badSum), false);
  const lostCopy = await writeVhd(MiB, []);
  lostCopy.fill(0, 0, 512);
  assert.equal(await probe(lostCopy), true); // then refused as corrupt, not read as raw
  assert.equal(await probe(Buffer.from('conectix')), false); // < 512 bytes
  assert.equal(await probe(Buffer.concat([Buffer.from('conectix'), Buffer.alloc(600)])), true);
});

test('a fixed disk whose first sector holds a VHD footer is still read as fixed', async () => {
  const inner = await writeVhd(MiB, [], { subformat: 'fixed' });
  const img = await writeVhd(MiB, [[0, Buffer.concat([inner.subarray(-512), Buffer.alloc(65536 - 512)])]], {
    subformat: 'fixed',
  });
  const layer = await open(img);
  assert.equal(layer.info.subformat, 'fixed');
  assert.equal((await layer.read(0, 8)).toString('latin1'), 'conectix');
});

test('differencing: bitmap bits decide between this layer and the parent', async () => {
  const base = await writeVhd(SIZE, [[0, fill(2 * MiB, 9)]]);
  const parentId = uniqueIdOf(base);
  let child = await writeVhd(SIZE, [
    [0, fill(2 * MiB, 3)],
    [2 * MiB, fill(2 * MiB, 4)],
  ]);
  child = toDifferencing(child, {
    parentId,
    parentName: 'base.vhd',
    locators: [
      { platform: PLATFORM.W2ku, data: utf16le('C:\\vms\\base.vhd') },
      { platform: PLATFORM.W2ru, data: utf16le('.\\base.vhd') },
    ],
  });
  // Block 0: sectors 0-7 present, the rest from the parent. Block 1: nothing present.
  const bits = Buffer.alloc(512);
  bits[0] = 0xff;
  child = setBitmap(child, 0, bits);
  child = setBitmap(child, 1, Buffer.alloc(512));
  const layer = await open(child);
  assert.equal(layer.info.subformat, 'differencing');
  assert.deepEqual(layer.info.parent, { name: '.\\base.vhd', format: 'vhd', expectedId: parentId });
  assert.equal(layer.info.details.parentLocator, 'W2ru');
  assert.equal(layer.info.details.parentName, 'base.vhd');
  const map = await layer.map(0, SIZE);
  assert.deepEqual(
    map.map((e) => [e.offset, e.length, e.kind]),
    [
      [0, 4096, 'data'],
      [4096, SIZE - 4096, 'unallocated'],
    ],
  );
  const data = await layer.read(0, 8192);
  assert.deepEqual(data.subarray(0, 4096), fill(2 * MiB, 3).subarray(0, 4096));
  assert.ok(data.subarray(4096).equals(Buffer.alloc(4096)));

  // The same bitmap in a dynamic disk reads as zeros (and maps as zero).
  const dynamic = setBitmap(await writeVhd(SIZE, [[0, fill(2 * MiB, 3)]]), 0, bits);
  const dl = await open(dynamic);
  assert.deepEqual(
    (await dl.map(0, 2 * MiB)).map((e) => e.kind),
    ['data', 'zero'],
  );
  assert.ok((await dl.read(4096, 4096)).equals(Buffer.alloc(4096)));
});

test('differencing: alternating bitmap bits are read with few source reads and exact bytes', async () => {
  let child = await writeVhd(4 * MiB, [[0, fill(2 * MiB, 6)]]);
  child = toDifferencing(child, { parentId: '11111111-2222-3333-4444-555555555555', parentName: 'p.vhd' });
  child = setBitmap(child, 0, Buffer.alloc(512, 0xaa));
  const layer = await open(child);
  assert.deepEqual(layer.info.parent, {
    name: 'p.vhd',
    format: 'vhd',
    expectedId: '11111111-2222-3333-4444-555555555555',
  });
  const data = await layer.read(0, 2 * MiB);
  const want = fill(2 * MiB, 6);
  for (let s = 1; s < 4096; s += 2) want.fill(0, s * 512, s * 512 + 512);
  assert.ok(data.equals(want));
  assert.equal((await layer.map(0, 2 * MiB)).length, 4096);
});

test('open refuses damaged files with coded errors', async () => {
  const img = await writeVhd(SIZE, BLOCKS);
  assert.equal(await openError(img.subarray(0, 100)), 'FERRY_IMAGE_CORRUPT');
  assert.equal(await openError(img.subarray(0, 2000)), 'FERRY_IMAGE_TRUNCATED');
  assert.equal(await openError(img.subarray(0, img.length - 600)), 'FERRY_IMAGE_TRUNCATED');
  assert.equal(
    await openError(patchFooter(img, (f) => flipByte(f, F.timestamp), false)),
    'FERRY_IMAGE_CORRUPT',
  );
  const dynNoCopy = Buffer.from(img);
  dynNoCopy.fill(0, 0, 512);
  assert.equal(await openError(dynNoCopy), 'FERRY_IMAGE_CORRUPT');
  const fixed = await writeVhd(MiB, [], { subformat: 'fixed' });
  assert.equal(await openError(fixed.subarray(512)), 'FERRY_IMAGE_TRUNCATED');
});

test('a trailing footer that differs from the copy is a warning', async () => {
  const img = await writeVhd(MiB, []);
  flipByte(img, img.length - 1);
  const layer = await open(img);
  assert.match(layer.info.warnings.join(), /differs from its copy/);
});

test('writer: options are validated; too-large disks are refused', async () => {
  const { MemorySink } = await import('../../io/block-sink.js');
  const make = (o: Record<string, unknown>) =>
    vhdDriver.createWriter!(new MemorySink(), { virtualSize: MiB, ...o } as never).then(
      () => 'ok',
      (e: FerryError) => e.code,
    );
  assert.equal(await make({ subformat: 'sparse' }), 'FERRY_INVALID_ARGUMENT');
  assert.equal(await make({ compress: true }), 'FERRY_INVALID_ARGUMENT');
  assert.equal(await make({ clusterSize: 3 << 20 }), 'FERRY_INVALID_ARGUMENT');
  assert.equal(await make({ clusterSize: 4096 }), 'FERRY_INVALID_ARGUMENT');
  assert.equal(await make({ subformat: 'fixed', clusterSize: 2 << 20 }), 'FERRY_INVALID_ARGUMENT');
  assert.equal(await make({ virtualSize: 2040 * 2 ** 30 + 512 }), 'FERRY_OUTPUT_TOO_LARGE');
  assert.equal(await make({ virtualSize: 2040 * 2 ** 30, subformat: 'fixed' }), 'ok');
  assert.equal(vhdDriver.needsSeekableSink('fixed'), false);
  assert.equal(vhdDriver.needsSeekableSink('dynamic'), true);
  assert.deepEqual(vhdDriver.writableSubformats, ['dynamic', 'fixed']);
});
