import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync } from 'node:zlib';
import { FerryError } from '../../../errors/index.js';
import { MemorySource } from '../../io/byte-source.js';
import type { LayerExtent } from '../../extent.js';
import type { DiskLayer } from '../../layer.js';
import { qcow2Driver } from './index.js';
import { buildQcow2, fill, memoryContext, type BuildSpec, type Built } from './testkit.js';

const MiB = 1 << 20;
const KiB = 1024;

async function open(b: Built, files: Record<string, Buffer> = {}): Promise<DiskLayer> {
  return qcow2Driver.open(new MemorySource(b.image, 'disk.qcow2'), memoryContext(files));
}

async function build(spec: BuildSpec): Promise<{ b: Built; layer: DiskLayer }> {
  const b = buildQcow2(spec);
  return { b, layer: await open(b, b.data && spec.dataFile ? { [spec.dataFile]: b.data } : {}) };
}

function kinds(extents: LayerExtent[]): string[] {
  return extents.map((e) => `${e.offset}+${e.length}:${e.kind}`);
}

async function failure(p: Promise<unknown>): Promise<FerryError> {
  try {
    await p;
  } catch (err) {
    assert.ok(FerryError.is(err), String(err));
    return err;
  }
  assert.fail('expected an error');
}

test('standard clusters: data, zero flag, unallocated; map merges and reads match', async () => {
  const cs = 64 * KiB;
  const { b, layer } = await build({
    virtualSize: 4 * MiB,
    clusters: [
      { index: 0, kind: 'data' },
      { index: 1, kind: 'data' },
      { index: 3, kind: 'zero' },
      { index: 4, kind: 'zero-alloc', data: Buffer.alloc(cs, 0xee) }, // stale bytes behind ZERO
      { index: 10, kind: 'data' },
    ],
  });
  assert.deepEqual(kinds(await layer.map(0, 4 * MiB)), [
    `0+${2 * cs}:data`,
    `${2 * cs}+${cs}:unallocated`,
    `${3 * cs}+${2 * cs}:zero`,
    `${5 * cs}+${5 * cs}:unallocated`,
    `${10 * cs}+${cs}:data`,
    `${11 * cs}+${4 * MiB - 11 * cs}:unallocated`,
  ]);
  const first = (await layer.map(0, cs))[0];
  assert.equal(first?.fileOffset, b.hostOffsets.get(0));
  assert.deepEqual(await layer.read(0, 4 * MiB), b.expected);
  // Unaligned ranges, inside one cluster and across kinds.
  assert.deepEqual(await layer.read(cs - 100, 3 * cs + 200), b.expected.subarray(cs - 100, 4 * cs + 100));
  assert.deepEqual(kinds(await layer.map(cs + 7, 10)), [`${cs + 7}+10:data`]);
  assert.equal(layer.info.format, 'qcow2');
  assert.equal(layer.info.subformat, 'v3');
  await layer.close();
});

test('every cluster size from 512 B to 2 MiB maps and reads', async () => {
  for (let bits = 9; bits <= 21; bits++) {
    const cs = 2 ** bits;
    const size = Math.max(4 * cs, 256 * KiB);
    const { b, layer } = await build({
      virtualSize: size,
      clusterBits: bits,
      clusters: [
        { index: 0, kind: 'data' },
        { index: 2, kind: 'compressed' },
        { index: 3, kind: 'zero' },
      ],
    });
    assert.deepEqual(await layer.read(0, size), b.expected, `cluster_bits ${bits}`);
    assert.equal(layer.info.clusterSize, cs);
  }
});

test('compressed clusters: zlib and zstd, tagged compressed, read in one pass', async () => {
  for (const compression of ['zlib', 'zstd'] as const) {
    const { b, layer } = await build({
      virtualSize: MiB,
      compression,
      clusters: [
        { index: 1, kind: 'compressed' },
        { index: 2, kind: 'compressed', data: Buffer.alloc(64 * KiB, 0x42) },
        { index: 3, kind: 'data' },
      ],
    });
    assert.deepEqual(kinds(await layer.map(0, MiB)), [
      `0+${64 * KiB}:unallocated`,
      `${64 * KiB}+${128 * KiB}:compressed`,
      `${192 * KiB}+${64 * KiB}:data`,
      `${256 * KiB}+${MiB - 256 * KiB}:unallocated`,
    ]);
    assert.deepEqual(await layer.read(0, MiB), b.expected, compression);
    assert.deepEqual(await layer.read(64 * KiB + 5, 100), b.expected.subarray(64 * KiB + 5, 64 * KiB + 105));
    assert.equal(layer.info.details.compressionType, compression);
  }
});

test('the last compressed sector may run past the end of the file', async () => {
  const b = buildQcow2({ virtualSize: MiB, clusters: [{ index: 0, kind: 'compressed' }] });
  // The builder ends the file at the last compressed byte, as QEMU does; make sure the
  // descriptor's last sector does pass EOF.
  assert.notEqual(b.image.length % 512, 0);
  const layer = await open(b);
  assert.deepEqual(await layer.read(0, 64 * KiB), b.expected.subarray(0, 64 * KiB));
});

test('extended L2: subcluster allocation and zero bitmaps give subcluster extents', async () => {
  const cs = 64 * KiB;
  const sc = cs / 32;
  const { b, layer } = await build({
    virtualSize: MiB,
    extendedL2: true,
    clusters: [
      { index: 0, kind: 'data', alloc: 0x0000000f, zero: 0x000000f0 }, // 4 data, 4 zero, 24 unallocated
      { index: 1, kind: 'zero', alloc: 0, zero: 0xffff0000 }, // unallocated cluster, upper half zero
      { index: 2, kind: 'data' },
      { index: 3, kind: 'compressed' },
    ],
  });
  assert.deepEqual(kinds(await layer.map(0, 4 * cs)), [
    `0+${4 * sc}:data`,
    `${4 * sc}+${4 * sc}:zero`,
    `${8 * sc}+${24 * sc + 16 * sc}:unallocated`,
    `${cs + 16 * sc}+${16 * sc}:zero`,
    `${2 * cs}+${cs}:data`,
    `${3 * cs}+${cs}:compressed`,
  ]);
  assert.deepEqual(await layer.read(0, MiB), b.expected);
  assert.deepEqual(await layer.read(sc * 3 + 1, sc * 2), b.expected.subarray(sc * 3 + 1, sc * 5 + 1));
  assert.equal(layer.info.details.extendedL2, true);
});

test('extended L2: contradictory bitmaps are corrupt', async () => {
  const both = await build({
    virtualSize: MiB,
    extendedL2: true,
    clusters: [{ index: 0, kind: 'data', alloc: 1, zero: 1 }],
  });
  assert.equal((await failure(both.layer.read(0, 4096))).code, 'FERRY_IMAGE_CORRUPT');
  const b = buildQcow2({
    virtualSize: MiB,
    extendedL2: true,
    clusters: [{ index: 0, kind: 'zero', alloc: 0, zero: 0 }],
  });
  const at = b.entryOffsets.get(0) as number;
  b.image.writeBigUInt64BE(0n, at); // no host cluster …
  b.image.writeUInt32BE(1, at + 12); // … but subcluster 0 allocated
  assert.equal((await failure((await open(b)).map(0, 4096))).code, 'FERRY_IMAGE_CORRUPT');
});

test('external data file: data clusters are read from it at the guest offset', async () => {
  const { b, layer } = await build({
    virtualSize: MiB,
    dataFile: 'disk.data',
    clusters: [
      { index: 0, kind: 'data' },
      { index: 2, kind: 'data' },
      { index: 3, kind: 'zero' },
    ],
  });
  assert.deepEqual(await layer.read(0, MiB), b.expected);
  const map = await layer.map(0, MiB);
  assert.equal(map[0]?.kind, 'data');
  assert.equal(map[0]?.fileOffset, undefined); // the offset is in the data file, not this file
  assert.deepEqual(layer.info.files, ['disk.data']);
  assert.equal(layer.info.fileSize, b.image.length + MiB);
  // A host offset that differs from the guest offset is corrupt (spec, QEMU).
  const bad = buildQcow2({ virtualSize: MiB, dataFile: 'disk.data', clusters: [{ index: 1, kind: 'data' }] });
  bad.image.writeUInt32BE(0, (bad.entryOffsets.get(1) as number) + 4);
  bad.image.writeUInt32BE(0x80000000, bad.entryOffsets.get(1) as number); // COPIED, offset 0
  const l = await open(bad, { 'disk.data': bad.data as Buffer });
  assert.equal((await failure(l.read(0, MiB))).code, 'FERRY_IMAGE_CORRUPT');
});

test('external data file: a missing file fails the open; raw data is reported', async () => {
  const b = buildQcow2({ virtualSize: MiB, dataFile: 'disk.data', dataFileRaw: true });
  assert.equal((await failure(open(b))).code, 'FERRY_REFERENCE_NOT_FOUND');
  const l = await open(b, { 'disk.data': b.data as Buffer });
  assert.equal(l.info.details.dataFileRaw, true);
});

test('backing file: reported as the parent with its format; unallocated falls through', async () => {
  const { layer } = await build({ virtualSize: MiB, backingFile: 'base.img', backingFormat: 'raw' });
  assert.deepEqual(layer.info.parent, { name: 'base.img', format: 'raw' });
  assert.deepEqual(kinds(await layer.map(0, MiB)), [`0+${MiB}:unallocated`]);
  const noFmt = await build({ virtualSize: MiB, backingFile: 'base.img' });
  assert.deepEqual(noFmt.layer.info.parent, { name: 'base.img' });
  assert.match(noFmt.layer.info.warnings.join(), /format is not recorded/);
});

test('dirty and corrupt images are readable with warnings', async () => {
  const { layer } = await build({
    virtualSize: MiB,
    incompatible: 3n,
    clusters: [{ index: 0, kind: 'data' }],
  });
  assert.equal(layer.info.warnings.length, 2);
  assert.equal(layer.info.details.dirty, true);
  assert.equal(layer.info.details.corrupt, true);
});

test('L2 tables are loaded lazily through a bounded cache (many tables, 4 KiB clusters)', async () => {
  const clusters = [];
  for (let i = 0; i < 1024; i += 3)
    clusters.push({ index: i * 16, kind: 'data' as const, data: fill(4096, i) });
  const { b, layer } = await build({ virtualSize: 64 * MiB, clusterBits: 12, clusters });
  assert.deepEqual(await layer.read(0, 16 * MiB), b.expected.subarray(0, 16 * MiB));
  assert.deepEqual(await layer.read(50 * MiB, 4 * MiB), b.expected.subarray(50 * MiB, 54 * MiB));
  const map = await layer.map(0, 64 * MiB);
  assert.equal(map.filter((e) => e.kind === 'data').length, clusters.length);
});

test('L1 entries pointing at the L1 table, misaligned or past the end are refused', async () => {
  const b = buildQcow2({ virtualSize: MiB, clusters: [{ index: 0, kind: 'data' }] });
  const cases: [bigint, string][] = [
    [(1n << 63n) | BigInt(b.l1Offset), 'FERRY_IMAGE_CORRUPT'],
    [(1n << 63n) | BigInt(b.refcountTableOffset), 'FERRY_IMAGE_CORRUPT'],
    [BigInt(b.l1Offset + 512), 'FERRY_IMAGE_CORRUPT'],
    [1n << 40n, 'FERRY_IMAGE_TRUNCATED'],
    [0x00ff_ffff_ffff_fe00n, 'FERRY_IMAGE_CORRUPT'],
  ];
  for (const [entry, code] of cases) {
    const img = Buffer.from(b.image);
    img.writeBigUInt64BE(entry, b.l1Offset);
    const layer = await open({ ...b, image: img });
    assert.equal((await failure(layer.read(0, 4096))).code, code, entry.toString(16));
  }
});

test('L2 entries: past the end, misaligned, into metadata, beyond 2^53 are refused', async () => {
  const b = buildQcow2({
    virtualSize: MiB,
    clusters: [
      { index: 0, kind: 'data' },
      { index: 1, kind: 'zero-alloc' },
    ],
  });
  const at = b.entryOffsets.get(0) as number;
  const cases: [bigint, string][] = [
    [(1n << 63n) | (1n << 40n), 'FERRY_IMAGE_TRUNCATED'],
    [(1n << 63n) | BigInt((b.hostOffsets.get(0) as number) + 512), 'FERRY_IMAGE_CORRUPT'],
    [(1n << 63n) | BigInt(b.l1Offset), 'FERRY_IMAGE_CORRUPT'],
    [(1n << 63n) | 0x00ff_ffff_ffff_0000n, 'FERRY_IMAGE_CORRUPT'],
    [BigInt((b.hostOffsets.get(0) as number) + 512) | 1n, 'FERRY_IMAGE_CORRUPT'], // misaligned zero-alloc
  ];
  for (const [entry, code] of cases) {
    const img = Buffer.from(b.image);
    img.writeBigUInt64BE(entry, at);
    const layer = await open({ ...b, image: img });
    assert.equal((await failure(layer.map(0, 64 * KiB))).code, code, entry.toString(16));
  }
});

test('compressed descriptors past the end of the file are refused', async () => {
  const b = buildQcow2({ virtualSize: MiB, clusters: [{ index: 0, kind: 'compressed' }] });
  const at = b.entryOffsets.get(0) as number;
  const hi = b.image.readUInt32BE(at);
  const img = Buffer.from(b.image);
  img.writeUInt32BE((hi | (0xff << 22)) >>> 0, at); // 255 more sectors than the file has
  assert.equal((await failure((await open({ ...b, image: img })).map(0, MiB))).code, 'FERRY_IMAGE_TRUNCATED');
  const far = Buffer.from(b.image);
  far.writeUInt32BE((hi | 0x100) >>> 0, at); // offset 1 TiB further, past the end
  assert.equal(
    (await failure((await open({ ...b, image: far })).read(0, MiB))).code,
    'FERRY_IMAGE_TRUNCATED',
  );
});

test('compressed data that inflates to more or less than a cluster is a decompression error', async () => {
  const bomb = deflateRawSync(Buffer.alloc(16 * MiB));
  const short = deflateRawSync(Buffer.alloc(1000, 1));
  for (const payload of [bomb, short, Buffer.from('not deflate at all, no no no')]) {
    const b = buildQcow2({ virtualSize: MiB, clusters: [{ index: 0, kind: 'compressed' }] });
    const host = b.hostOffsets.get(0) as number;
    const img = Buffer.concat([b.image.subarray(0, host), payload]);
    const extra = Math.floor((host + payload.length - 1) / 512) - Math.floor(host / 512);
    img.writeUInt32BE((0x40000000 | (extra << 22)) >>> 0, b.entryOffsets.get(0) as number);
    img.writeUInt32BE(host, (b.entryOffsets.get(0) as number) + 4);
    const layer = await open({ ...b, image: img });
    const started = performance.now();
    assert.equal((await failure(layer.read(0, 64 * KiB))).code, 'FERRY_IMAGE_DECOMPRESSION_FAILED');
    assert.ok(performance.now() - started < 1000);
  }
});

test('zstd frames that are not one cluster are decompression errors', async () => {
  const b = buildQcow2({
    virtualSize: MiB,
    compression: 'zstd',
    clusters: [{ index: 0, kind: 'compressed' }],
  });
  const host = b.hostOffsets.get(0) as number;
  const img = Buffer.from(b.image);
  img.fill(0x33, host + 4, host + 12); // damage the frame header
  assert.equal(
    (await failure((await open({ ...b, image: img })).read(0, 64 * KiB))).code,
    'FERRY_IMAGE_DECOMPRESSION_FAILED',
  );
});

test('compressed clusters in an image with an external data file are corrupt', async () => {
  const b = buildQcow2({ virtualSize: MiB, dataFile: 'd', clusters: [{ index: 1, kind: 'compressed' }] });
  const layer = await open(b, { d: b.data as Buffer });
  assert.equal((await failure(layer.map(0, MiB))).code, 'FERRY_IMAGE_CORRUPT');
});

test('v2 images read, and a v2 zero bit reads as zeros as in QEMU', async () => {
  const { b, layer } = await build({
    virtualSize: MiB,
    version: 2,
    clusters: [
      { index: 0, kind: 'data' },
      { index: 1, kind: 'compressed' },
    ],
  });
  assert.equal(layer.info.subformat, 'v2');
  assert.deepEqual(await layer.read(0, MiB), b.expected);
});
