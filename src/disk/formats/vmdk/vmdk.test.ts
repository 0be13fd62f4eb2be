import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { MemorySink } from '../../io/block-sink.js';
import { MemorySource, type ByteSource } from '../../io/byte-source.js';
import type { DiskLayer, OpenContext } from '../../layer.js';
import { buildGrainMarker, buildMarker, buildSparseHeader, tableBytes } from './build.js';
import { vmdkDriver } from './index.js';
import {
  COWD,
  COWD_MAGIC,
  FLAG_COMPRESSED,
  FLAG_MARKERS,
  FLAG_NL_DETECT,
  FLAG_ZERO_GRAIN,
  GD_AT_END,
  MARKER_FOOTER,
} from './layout.js';
import { sampledEntropy, STORE_ENTROPY_BITS } from './writer.js';

const G = 65536;
const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;

function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}

/** A disk with random, text-like and zero grains, and a last partial grain. */
function sampleDisk(): Buffer {
  const d = Buffer.alloc(40 * G + 8192);
  pattern(3 * G, 1).copy(d, 0);
  Buffer.from('hello vmdk '.repeat(12000)).copy(d, 10 * G);
  pattern(G, 2).copy(d, 33 * G + 4096);
  pattern(8192, 3).copy(d, 40 * G);
  return d;
}

/** Feeds a writer the way copyDisk does: non-zero blocks of blockSize, in order. */
async function writeImage(subformat: string, disk: Buffer, seekable: boolean): Promise<Buffer> {
  const sink = new MemorySink({ seekable, name: 'out.vmdk' });
  const w = await vmdkDriver.createWriter!(sink, { virtualSize: disk.length, subformat });
  for (let off = 0; off < disk.length; off += w.blockSize) {
    const block = disk.subarray(off, Math.min(off + w.blockSize, disk.length));
    if (block.some((x) => x !== 0)) await w.writeBlock(off, Buffer.from(block));
  }
  await w.finish();
  return Buffer.from(sink.contents());
}

const noRefs: OpenContext = {
  openReference: async (name) => {
    throw Object.assign(new Error(`unexpected reference ${name}`), { code: 'FERRY_REFERENCE_REFUSED' });
  },
};

async function open(buf: Buffer, ctx: OpenContext = noRefs, name = 'img.vmdk'): Promise<DiskLayer> {
  const src = new MemorySource(buf, name);
  assert.ok(await vmdkDriver.probe(src), 'probe');
  return vmdkDriver.open(src, ctx);
}

async function readAll(layer: DiskLayer): Promise<Buffer> {
  const parts: Buffer[] = [];
  const size = layer.info.virtualSize;
  for (let off = 0; off < size; off += 3 * G + 512)
    parts.push(await layer.read(off, Math.min(3 * G + 512, size - off)));
  return Buffer.concat(parts);
}

test('streamOptimized written to a pipe reads back, maps compressed grains, has a valid footer', async () => {
  const disk = sampleDisk();
  const img = await writeImage('streamOptimized', disk, false);
  const layer = await open(img);
  assert.equal(layer.info.subformat, 'streamOptimized');
  assert.equal(layer.info.virtualSize, disk.length);
  assert.match(layer.info.id ?? '', /^[0-9a-f]{8}$/);
  assert.equal(layer.info.parent, undefined);
  assert.ok((await readAll(layer)).equals(disk));
  const map = await layer.map(0, disk.length);
  assert.deepEqual(
    map.map((e) => [e.offset / G, e.length / G, e.kind]),
    [
      [0, 3, 'compressed'],
      [3, 7, 'unallocated'],
      [10, 3, 'compressed'],
      [13, 20, 'unallocated'],
      [33, 2, 'compressed'],
      [35, 5, 'unallocated'],
      [40, 8192 / G, 'compressed'],
    ],
  );
  // Header says GD_AT_END; the last three sectors are FOOTER marker, footer, EOS.
  assert.equal(img.readBigUInt64LE(56), GD_AT_END);
  assert.equal(img.readUInt32LE(img.length - 1536 + 12), MARKER_FOOTER);
  assert.ok(img.subarray(img.length - 512).every((x) => x === 0));
  await layer.close();
});

test('monolithicSparse round trip maps data with file offsets', async () => {
  const disk = sampleDisk();
  const img = await writeImage('monolithicSparse', disk, true);
  const layer = await open(img);
  assert.equal(layer.info.subformat, 'monolithicSparse');
  assert.ok((await readAll(layer)).equals(disk));
  const first = (await layer.map(0, G))[0];
  assert.equal(first?.kind, 'data');
  assert.ok(img.subarray(first!.fileOffset!, first!.fileOffset! + G).equals(disk.subarray(0, G)));
  await assert.rejects(writeImage('monolithicSparse', disk, false), code('FERRY_OUTPUT_NOT_SEEKABLE'));
  assert.equal(vmdkDriver.needsSeekableSink('streamOptimized'), false);
  assert.equal(vmdkDriver.needsSeekableSink('monolithicSparse'), true);
});

test('writer options are validated', async () => {
  const sink = new MemorySink();
  await assert.rejects(vmdkDriver.createWriter!(sink, { virtualSize: 0 }), code('FERRY_INVALID_ARGUMENT'));
  await assert.rejects(
    vmdkDriver.createWriter!(sink, { virtualSize: G, clusterSize: 3000 }),
    code('FERRY_INVALID_ARGUMENT'),
  );
  await assert.rejects(
    vmdkDriver.createWriter!(sink, { virtualSize: 2 ** 41 }),
    code('FERRY_OUTPUT_TOO_LARGE'),
  );
  const w = await vmdkDriver.createWriter!(new MemorySink(), { virtualSize: 4 * G });
  await w.writeBlock(2 * G, Buffer.alloc(G, 1));
  await assert.rejects(w.writeBlock(G, Buffer.alloc(G, 1)), code('FERRY_INVALID_ARGUMENT'));
});

test('high-entropy grains are stored, text is deflated', () => {
  assert.ok(sampledEntropy(randomBytes(G)) >= STORE_ENTROPY_BITS);
  assert.ok(sampledEntropy(pattern(G, 9)) < 8);
  assert.ok(sampledEntropy(Buffer.from('hello vmdk '.repeat(6000))) < STORE_ENTROPY_BITS);
});

/** A hand-made stream: one grain table, `grains` compressed with `lba`/`size` overrides. */
function craftStream(
  grains: Array<{ grain: number; data: Buffer; lba?: number; size?: number }>,
  capacity = 8 * G,
): Buffer {
  const header = (gd: number | bigint) =>
    buildSparseHeader({
      version: 3,
      flags: FLAG_NL_DETECT | FLAG_COMPRESSED | FLAG_MARKERS,
      capacitySectors: capacity / 512,
      grainSectors: G / 512,
      descriptorOffset: 0,
      descriptorSectors: 0,
      rgdOffset: 0,
      gdOffset: gd,
      overHeadSectors: 1,
      compressed: true,
    });
  const parts: Buffer[] = [header(GD_AT_END)];
  let pos = 512;
  const gt = new Uint32Array(512);
  for (const g of grains) {
    const z = deflateSync(g.data);
    gt[g.grain] = pos / 512;
    const rec = Buffer.concat([buildGrainMarker(g.lba ?? g.grain * 128, g.size ?? z.length), z]);
    const padded = Buffer.alloc(Math.ceil(rec.length / 512) * 512);
    rec.copy(padded);
    parts.push(padded);
    pos += padded.length;
  }
  parts.push(buildMarker(4, 1));
  const gtSector = pos / 512 + 1;
  parts.push(tableBytes(gt));
  pos += 512 + 2048;
  const gd = new Uint32Array([gtSector]);
  parts.push(buildMarker(1, 2), tableBytes(gd));
  const gdSector = pos / 512 + 1;
  parts.push(buildMarker(1, MARKER_FOOTER), header(gdSector), Buffer.alloc(512));
  return Buffer.concat(parts);
}

test('crafted VMware stream without descriptor reads; lba mismatch, bad size and bombs fail', async () => {
  const a = pattern(G, 5);
  const layer = await open(craftStream([{ grain: 2, data: a }]));
  assert.ok((await layer.read(2 * G, G)).equals(a));
  assert.ok(layer.info.warnings.some((w) => /no embedded descriptor/.test(w)));
  assert.equal(layer.info.id, undefined);
  const bad = async (img: Buffer, c: string) => {
    const l = await open(img);
    await assert.rejects(l.read(0, 8 * G), code(c));
  };
  await bad(craftStream([{ grain: 1, data: a, lba: 0 }]), 'FERRY_IMAGE_CORRUPT');
  await bad(craftStream([{ grain: 1, data: a, size: 0 }]), 'FERRY_IMAGE_CORRUPT');
  await bad(craftStream([{ grain: 1, data: a, size: 3 * G }]), 'FERRY_IMAGE_CORRUPT');
  await bad(craftStream([{ grain: 1, data: Buffer.alloc(64 * G) }]), 'FERRY_IMAGE_DECOMPRESSION_FAILED');
  await bad(craftStream([{ grain: 1, data: Buffer.alloc(G / 2, 1) }]), 'FERRY_IMAGE_DECOMPRESSION_FAILED');
  // The footer must be there when the header defers to it.
  const img = craftStream([{ grain: 1, data: a }]);
  await assert.rejects(open(img.subarray(0, img.length - 512)), code('FERRY_IMAGE_CORRUPT'));
});

test('zeroed-grain entries read as zero only with the flag', async () => {
  const img = await writeImage('monolithicSparse', Buffer.concat([pattern(G, 1), Buffer.alloc(G)]), true);
  const gtAt = img.readUInt32LE(56) * 512; // gdOffset → first GD entry → GT
  const gt = img.readUInt32LE(gtAt) * 512;
  img.writeUInt32LE(1, gt + 4); // grain 1 → GTE 1
  const plain = await open(Buffer.from(img));
  assert.equal((await plain.map(G, G))[0]?.kind, 'data'); // sector 1 (QEMU does the same)
  img.writeUInt32LE(img.readUInt32LE(8) | FLAG_ZERO_GRAIN, 8);
  img.writeUInt32LE(2, 4);
  const zeroed = await open(img);
  assert.equal((await zeroed.map(G, G))[0]?.kind, 'zero');
  assert.ok((await zeroed.read(G, G)).every((x) => x === 0));
});

/** A context serving named in-memory files. */
function files(map: Record<string, Buffer>): OpenContext {
  return {
    openReference: async (name): Promise<ByteSource> => {
      const b = map[name];
      if (!b) throw Object.assign(new Error(name), { code: 'FERRY_REFERENCE_NOT_FOUND' });
      return new MemorySource(b, name);
    },
  };
}

test('descriptor with FLAT, VMFS, ZERO and SPARSE extents; parent and CID are reported', async () => {
  const flat = pattern(4 * G, 7);
  const sparseDisk = Buffer.concat([Buffer.alloc(G), pattern(G, 8)]);
  const sparse = await writeImage('monolithicSparse', sparseDisk, true);
  const desc = [
    '# Disk DescriptorFile',
    'version=1',
    'CID=0000beef',
    'parentCID=12345678',
    'createType="vmfs"',
    'parentFileNameHint="base.vmdk"',
    `RW ${G / 512} FLAT "f.bin" ${G / 512}`,
    `RW ${G / 512} ZERO`,
    `RDONLY ${(2 * G) / 512} VMFS "f.bin"`,
    `RW ${(2 * G) / 512} SPARSE "s.vmdk"`,
  ].join('\n');
  const layer = await open(Buffer.from(desc), files({ 'f.bin': flat, 's.vmdk': sparse }), 'd.vmdk');
  assert.equal(layer.info.virtualSize, 6 * G);
  assert.deepEqual(layer.info.parent, { name: 'base.vmdk', format: 'vmdk', expectedId: '12345678' });
  assert.equal(layer.info.id, '0000beef');
  assert.deepEqual(layer.info.files, ['f.bin', 's.vmdk']);
  const all = await layer.read(0, 6 * G);
  const expect = Buffer.concat([
    flat.subarray(G, 2 * G),
    Buffer.alloc(G),
    flat.subarray(0, 2 * G),
    sparseDisk,
  ]);
  assert.ok(all.equals(expect));
  assert.deepEqual(
    (await layer.map(0, 6 * G)).map((e) => [e.offset / G, e.length / G, e.kind]),
    [
      [0, 1, 'data'],
      [1, 1, 'zero'],
      [2, 2, 'data'],
      [4, 1, 'unallocated'],
      [5, 1, 'data'],
    ],
  );
  // Size mismatches between the descriptor and the files are corrupt / truncated.
  const wrong = desc.replace(`RW ${(2 * G) / 512} SPARSE`, `RW ${(3 * G) / 512} SPARSE`);
  await assert.rejects(
    open(Buffer.from(wrong), files({ 'f.bin': flat, 's.vmdk': sparse })),
    code('FERRY_IMAGE_CORRUPT'),
  );
  const short = desc.replace(`RDONLY ${(2 * G) / 512} VMFS`, `RDONLY ${(5 * G) / 512} VMFS`);
  await assert.rejects(
    open(Buffer.from(short), files({ 'f.bin': flat, 's.vmdk': sparse })),
    code('FERRY_IMAGE_TRUNCATED'),
  );
  const unknown = desc.replace('createType="vmfs"', 'createType="fullDevice"');
  await assert.rejects(open(Buffer.from(unknown), files({})), code('FERRY_IMAGE_UNSUPPORTED'));
});

test('a COWD (ESX vmfsSparse) delta extent reads through its 4096-entry tables', async () => {
  const img = Buffer.alloc(64 * 512);
  img.writeUInt32LE(COWD_MAGIC, 0);
  img.writeUInt32LE(1, COWD.version);
  img.writeUInt32LE(3, COWD.flags);
  img.writeUInt32LE(4096 * 2, COWD.capacity); // 2 tables of 4096 one-sector grains
  img.writeUInt32LE(1, COWD.grainSize);
  img.writeUInt32LE(1, COWD.gdOffset);
  img.writeUInt32LE(2, COWD.numGDEntries);
  img.writeUInt32LE(2, 512); // GD[0] → GT at sector 2 (16 KiB = 32 sectors)
  img.writeUInt32LE(40, 2 * 512 + 4 * 5); // grain 5 → sector 40
  img.fill(0xab, 40 * 512, 41 * 512);
  const desc = `version=1\nCID=1\nparentCID=2\nparentFileNameHint="b.vmdk"\ncreateType="vmfsSparse"\nRW 8192 VMFSSPARSE "d-delta.vmdk"\n`;
  const layer = await open(Buffer.from(desc), files({ 'd-delta.vmdk': img }));
  assert.equal(layer.info.subformat, 'vmfsSparse');
  assert.equal(layer.info.clusterSize, 512);
  const got = await layer.read(4 * 512, 3 * 512);
  assert.ok(got.subarray(512, 1024).every((x) => x === 0xab));
  assert.ok(got.subarray(0, 512).every((x) => x === 0));
  assert.deepEqual(
    (await layer.map(0, 8192 * 512)).map((e) => [e.offset / 512, e.length / 512, e.kind]),
    [
      [0, 5, 'unallocated'],
      [5, 1, 'data'],
      [6, 8186, 'unallocated'],
    ],
  );
});

test('probe: never throws, matches magic or descriptor text only', async () => {
  const p = (b: Buffer) => vmdkDriver.probe(new MemorySource(b));
  assert.equal(await p(Buffer.alloc(0)), false);
  assert.equal(await p(Buffer.from('KDMV')), true);
  assert.equal(await p(Buffer.from('# Disk DescriptorFile\n')), true);
  assert.equal(await p(Buffer.from('hello world, not a disk')), false);
  const big = Buffer.alloc(2 << 20);
  big.write('# Disk DescriptorFile\n');
  assert.equal(await p(big), false);
});
