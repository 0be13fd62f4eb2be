import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../../errors/index.js';
import { MemorySink } from '../../io/block-sink.js';
import { MemorySource } from '../../io/byte-source.js';
import type { WriterOptions } from '../../layer.js';
import { qcow2Driver } from './index.js';
import { HDR } from './layout.js';
import { planRefcounts } from './refcount.js';
import { fill, memoryContext } from './testkit.js';

const KiB = 1024;
const MiB = 1 << 20;

function noise(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** A disk: pseudo-random clusters, compressible clusters, zero runs. */
function sampleDisk(size: number): Buffer {
  const d = Buffer.alloc(size);
  for (let off = 0; off < size; off += 96 * KiB) {
    const kind = (off / (96 * KiB)) % 4;
    const len = Math.min(40 * KiB, size - off);
    if (kind === 0) noise(len, off).copy(d, off);
    else if (kind === 3) fill(len, off).copy(d, off);
    else if (kind === 1) d.fill(0x61 + (off % 7), off, off + len);
    else if (kind === 2) d.write('sparse text '.repeat(100), off + 700);
  }
  return d;
}

/** Feeds `disk` to a writer the way pipeline/copy.ts does: aligned blocks, zero blocks skipped. */
async function write(disk: Buffer, options: Omit<WriterOptions, 'virtualSize'> = {}): Promise<Buffer> {
  const sink = new MemorySink();
  const writer = await qcow2Driver.createWriter!(sink, { virtualSize: disk.length, ...options });
  for (let off = 0; off < disk.length; off += writer.blockSize) {
    const block = disk.subarray(off, Math.min(off + writer.blockSize, disk.length));
    if (!block.equals(Buffer.alloc(block.length))) await writer.writeBlock(off, Buffer.from(block));
  }
  await writer.finish();
  return Buffer.from(sink.contents());
}

async function readBack(image: Buffer): Promise<{ data: Buffer; kinds: Set<string> }> {
  const layer = await qcow2Driver.open(new MemorySource(image, 'out.qcow2'), memoryContext());
  const size = layer.info.virtualSize;
  const kinds = new Set((await layer.map(0, size)).map((e) => e.kind));
  return { data: await layer.read(0, size), kinds };
}

/**
 * What `qemu-img check` verifies about refcounts: every cluster's refcount equals the
 * references to it (header, L1, L2, refcount structures, data, sector-rounded compressed
 * ranges), and no cluster past the end of the file is referenced.
 */
function checkRefcounts(img: Buffer): void {
  const bits = img.readUInt32BE(HDR.clusterBits);
  const cs = 2 ** bits;
  const clusters = img.length / cs;
  assert.equal(clusters, Math.floor(clusters), 'file is whole clusters');
  const refs = new Array<number>(clusters).fill(0);
  const ref = (off: number, len: number) => {
    for (let c = Math.floor(off / cs); c <= Math.floor((off + len - 1) / cs); c++) {
      assert.ok(c < clusters, `reference past EOF at cluster ${c}`);
      refs[c] = (refs[c] as number) + 1;
    }
  };
  ref(0, cs);
  const l1Size = img.readUInt32BE(HDR.l1Size);
  const l1Off = Number(img.readBigUInt64BE(HDR.l1TableOffset));
  if (l1Size > 0) ref(l1Off, l1Size * 8);
  const x = 62 - (bits - 8);
  for (let i = 0; i < l1Size; i++) {
    const l1e = img.readBigUInt64BE(l1Off + i * 8);
    const l2 = Number(l1e & 0x00ff_ffff_ffff_fe00n);
    if (!l2) continue;
    assert.equal(l1e >> 63n, 1n, 'L1 entries carry COPIED');
    ref(l2, cs);
    for (let j = 0; j < cs / 8; j++) {
      const e = img.readBigUInt64BE(l2 + j * 8);
      if (e === 0n) continue;
      if ((e >> 62n) & 1n) {
        assert.equal(e >> 63n, 0n, 'compressed entries are not COPIED');
        const off = Number(e & ((1n << BigInt(x)) - 1n));
        const sectors = Number((e >> BigInt(x)) & ((1n << BigInt(bits - 8)) - 1n)) + 1;
        ref(off - (off % 512), sectors * 512);
      } else {
        assert.equal(e >> 63n, 1n, 'data entries carry COPIED');
        ref(Number(e & 0x00ff_ffff_ffff_fe00n), cs);
      }
    }
  }
  const rtOff = Number(img.readBigUInt64BE(HDR.refcountTableOffset));
  const rtClusters = img.readUInt32BE(HDR.refcountTableClusters);
  ref(rtOff, rtClusters * cs);
  const perBlock = cs / 2;
  for (let i = 0; i < (rtClusters * cs) / 8; i++) {
    const rb = Number(img.readBigUInt64BE(rtOff + i * 8));
    if (rb) ref(rb, cs);
  }
  for (let c = 0; c < clusters; c++) {
    const rb = Number(img.readBigUInt64BE(rtOff + Math.floor(c / perBlock) * 8));
    const count = rb ? img.readUInt16BE(rb + (c % perBlock) * 2) : 0;
    assert.equal(count, refs[c], `refcount of cluster ${c}`);
  }
}

test('round trip: the writer output reads back identical, with sound refcounts', async () => {
  const disk = sampleDisk(3 * MiB + 512);
  for (const clusterSize of [512, 4 * KiB, 64 * KiB, 2 * MiB]) {
    const img = await write(disk, { clusterSize });
    checkRefcounts(img);
    const { data, kinds } = await readBack(img);
    assert.equal(data.length, disk.length);
    assert.ok(data.equals(disk), `cluster size ${clusterSize}`);
    assert.ok(!kinds.has('compressed'));
  }
});

test('compressed round trip: zlib clusters, incompressible ones stored plain, refcounts sound', async () => {
  const disk = sampleDisk(2 * MiB);
  for (const clusterSize of [512, 16 * KiB, 64 * KiB, 2 * MiB]) {
    const img = await write(disk, { compress: true, clusterSize });
    checkRefcounts(img);
    const { data, kinds } = await readBack(img);
    assert.ok(data.equals(disk), `cluster size ${clusterSize}`);
    assert.ok(kinds.has('compressed'));
    if (clusterSize <= 16 * KiB) assert.ok(kinds.has('data'), 'random clusters stay plain');
  }
  const plain = await write(disk);
  const packed = await write(disk, { compress: true });
  assert.ok(packed.length < plain.length);
});

test('small clusters: many L2 tables, refcount blocks and a multi-cluster refcount table', async () => {
  const disk = noise(10 * MiB, 99);
  const img = await write(disk, { clusterSize: 512 });
  assert.ok(img.readUInt32BE(HDR.refcountTableClusters) > 1);
  checkRefcounts(img);
  assert.ok((await readBack(img)).data.equals(disk));
});

test('zero blocks stay unallocated; an empty disk is a valid image', async () => {
  const disk = Buffer.alloc(MiB);
  disk.fill(7, 300 * KiB, 301 * KiB);
  const img = await write(disk);
  checkRefcounts(img);
  const layer = await qcow2Driver.open(new MemorySource(img), memoryContext());
  const map = await layer.map(0, MiB);
  assert.deepEqual(
    map.map((e) => e.kind),
    ['unallocated', 'data', 'unallocated'],
  );
  const empty = await write(Buffer.alloc(0));
  checkRefcounts(empty);
  assert.equal((await readBack(empty)).data.length, 0);
});

test('the header is a v3 header QEMU reads: 112 bytes, zlib, refcount_order 4', async () => {
  const img = await write(sampleDisk(MiB));
  assert.equal(img.readUInt32BE(HDR.version), 3);
  assert.equal(img.readUInt32BE(HDR.headerLength), 112);
  assert.equal(img.readUInt32BE(HDR.refcountOrder), 4);
  assert.equal(img[HDR.compressionType], 0);
  assert.equal(img.readBigUInt64BE(HDR.incompatibleFeatures), 0n);
  assert.equal(img.readUInt32BE(HDR.clusterBits), 16);
});

test('odd virtual sizes are rounded up to whole sectors', async () => {
  const sink = new MemorySink();
  const w = await qcow2Driver.createWriter!(sink, { virtualSize: 1000 });
  await w.writeBlock(0, Buffer.alloc(1000, 1));
  await w.finish();
  const { data } = await readBack(Buffer.from(sink.contents()));
  assert.equal(data.length, 1024);
  assert.ok(data.subarray(0, 1000).equals(Buffer.alloc(1000, 1)));
});

test('bad options and sinks are refused with coded errors', async () => {
  const code = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      assert.ok(FerryError.is(err));
      return err.code;
    }
    return 'none';
  };
  const sink = new MemorySink();
  const make = (o: Partial<WriterOptions>, s = sink) =>
    qcow2Driver.createWriter!(s, { virtualSize: MiB, ...o });
  assert.equal(await code(make({ clusterSize: 256 })), 'FERRY_INVALID_ARGUMENT');
  assert.equal(await code(make({ clusterSize: 4 * MiB })), 'FERRY_INVALID_ARGUMENT');
  assert.equal(await code(make({ clusterSize: 3000 })), 'FERRY_INVALID_ARGUMENT');
  assert.equal(await code(make({ subformat: 'v2' })), 'FERRY_INVALID_ARGUMENT');
  assert.equal(await code(make({ virtualSize: 2 ** 50 })), 'FERRY_OUTPUT_TOO_LARGE');
  assert.equal(await code(make({ virtualSize: 256 * 2 ** 30, clusterSize: 512 })), 'FERRY_OUTPUT_TOO_LARGE');
  assert.equal(await code(make({}, new MemorySink({ seekable: false }))), 'FERRY_OUTPUT_NOT_SEEKABLE');
  assert.equal(qcow2Driver.needsSeekableSink('v3'), true);
  assert.deepEqual(qcow2Driver.writableSubformats, ['v3']);
});

test('blocks out of order or past the end are a programming error, not silent corruption', async () => {
  const w = await qcow2Driver.createWriter!(new MemorySink(), { virtualSize: MiB });
  await w.writeBlock(128 * KiB, Buffer.alloc(64 * KiB, 1));
  await assert.rejects(w.writeBlock(0, Buffer.alloc(64 * KiB, 1)), /FERRY_INTERNAL|after/);
  const w2 = await qcow2Driver.createWriter!(new MemorySink(), { virtualSize: MiB });
  await assert.rejects(w2.writeBlock(MiB, Buffer.alloc(64 * KiB, 1)));
});

test('refcount planning covers the refcount structures themselves', () => {
  for (const [used, cs] of [
    [0, 512],
    [1, 512],
    [255, 512],
    [256, 512],
    [257, 512],
    [100000, 512],
    [5, 65536],
    [32768 * 3 - 2, 65536],
  ] as const) {
    const p = planRefcounts(used, cs);
    assert.equal(p.totalClusters, used + p.blocks + p.tableClusters);
    assert.ok(p.blocks * (cs / 2) >= p.totalClusters);
    assert.ok(p.tableClusters * cs >= p.blocks * 8);
  }
});
