import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MemorySink } from '../../io/block-sink.js';
import { MemorySource } from '../../io/byte-source.js';
import type { DiskLayer } from '../../layer.js';
import { setBatEntry } from './build.js';
import { vhdxDriver } from './index.js';
import {
  GUID_BAT_REGION,
  HEADER_OFFSETS,
  PAYLOAD_FULLY_PRESENT,
  PAYLOAD_NOT_PRESENT,
  PAYLOAD_PARTIALLY_PRESENT,
  PAYLOAD_UNDEFINED,
  PAYLOAD_ZERO,
  REGION_TABLE_OFFSETS,
} from './layout.js';
import { buildLogEntry, buildTestImage, rehashHeader, setLogGuid, TEST_LAYOUT } from './testing.js';
import { createVhdxWriter, type VhdxWriterSettings } from './writer.js';

const MiB = 1 << 20;
const ctx = { openReference: () => Promise.reject(new Error('no references in these tests')) };
const open = (buf: Buffer, name = 'test.vhdx'): Promise<DiskLayer> =>
  vhdxDriver.open(new MemorySource(buf, name), ctx);

async function write(content: Buffer, s: Partial<VhdxWriterSettings> = {}): Promise<Buffer> {
  const sink = new MemorySink();
  const w = await createVhdxWriter(sink, {
    virtualSize: content.length,
    subformat: 'dynamic',
    blockSize: MiB,
    logicalSectorSize: 512,
    ...s,
  });
  for (let off = 0; off < content.length; off += w.blockSize) {
    const block = content.subarray(off, Math.min(off + w.blockSize, content.length));
    if (block.some((b) => b !== 0)) await w.writeBlock(off, Buffer.from(block));
  }
  await w.finish();
  return Buffer.from(sink.contents());
}

function sample(size: number): Buffer {
  const buf = Buffer.alloc(size);
  randomBytes(300_000).copy(buf, 5000); // blocks 0
  randomBytes(4096).copy(buf, 3 * MiB + 512); // block 3
  if (size > 9 * MiB) randomBytes(1000).copy(buf, size - 1000); // last block
  return buf;
}

test('writer → reader round trip: dynamic, fixed, 4 KiB sectors, odd sizes', async () => {
  for (const [size, s] of [
    [10 * MiB + 512, {}],
    [8 * MiB, { subformat: 'fixed' as const }],
    [12 * MiB, { logicalSectorSize: 4096 as const, blockSize: 2 * MiB }],
    [0, {}],
  ] as const) {
    const content = sample(size);
    const image = await write(content, s);
    assert.equal(await vhdxDriver.probe(new MemorySource(image)), true);
    const layer = await open(image);
    assert.equal(layer.info.virtualSize, size);
    assert.equal(layer.info.subformat, s.subformat ?? 'dynamic');
    assert.equal(layer.info.details.logicalSectorSize, s.logicalSectorSize ?? 512);
    if (size > 0) assert.deepEqual(await layer.read(0, size), content);
    const map = size > 0 ? await layer.map(0, size) : [];
    if (size > 0 && !s.subformat) {
      // A block is stored exactly when it holds a non-zero byte; the rest is unallocated.
      const bs = s.blockSize ?? MiB;
      for (const e of map) {
        for (let b = e.offset; b < e.offset + e.length; b += bs) {
          const nonZero = content.subarray(b, Math.min(b + bs, size)).some((x) => x !== 0);
          assert.equal(e.kind, nonZero ? 'data' : 'unallocated', `block at ${b}`);
        }
      }
    }
    if (s.subformat === 'fixed')
      assert.deepEqual(
        map.map((e) => e.kind),
        ['data'],
      );
    await layer.close();
  }
});

test('a differencing disk maps present sectors as data and the rest as unallocated', async () => {
  const block0 = randomBytes(MiB);
  const block1 = randomBytes(MiB);
  const img = buildTestImage({
    virtualSize: 6 * MiB,
    blockSize: MiB,
    parentLocator: [
      ['parent_linkage', '{AABBCCDD-0000-1111-2222-333344445555}'],
      ['relative_path', '.\\base.vhdx'],
      ['absolute_win32_path', '\\\\?\\C:\\vms\\base.vhdx'],
    ],
    dataWriteGuid: '01234567-89ab-cdef-0123-456789abcdef',
    blocks: new Map([
      [0, { state: PAYLOAD_FULLY_PRESENT, data: block0 }],
      [1, { state: PAYLOAD_PARTIALLY_PRESENT, data: block1, sectors: [0, 1, 2, 100, 101, 2047] }],
      [2, { state: PAYLOAD_ZERO }],
      [3, { state: PAYLOAD_UNDEFINED }],
    ]),
  });
  const layer = await open(img.bytes);
  assert.equal(layer.info.subformat, 'differencing');
  assert.deepEqual(layer.info.parent, {
    name: '.\\base.vhdx',
    format: 'vhdx',
    expectedId: 'aabbccdd-0000-1111-2222-333344445555',
  });
  assert.equal(layer.info.id, '01234567-89ab-cdef-0123-456789abcdef');
  const map = await layer.map(0, 6 * MiB);
  assert.deepEqual(
    map.map((e) => [e.offset, e.length, e.kind]),
    [
      [0, MiB + 1536, 'data'],
      [MiB + 1536, 97 * 512, 'unallocated'],
      [MiB + 100 * 512, 1024, 'data'],
      [MiB + 102 * 512, (2047 - 102) * 512, 'unallocated'],
      [2 * MiB - 512, 512, 'data'],
      [2 * MiB, MiB, 'zero'],
      [3 * MiB, 3 * MiB, 'unallocated'],
    ],
  );
  // The block-0 and block-1 runs are contiguous in the file, so they merged into one extent.
  const bytes = await layer.read(MiB - 10, 2000);
  assert.deepEqual(bytes.subarray(0, 10), block0.subarray(MiB - 10));
  assert.deepEqual(bytes.subarray(10, 1546), block1.subarray(0, 1536));
  assert.deepEqual(bytes.subarray(1546), Buffer.alloc(2000 - 1546));
  assert.deepEqual(await layer.read(MiB + 100 * 512 + 3, 10), block1.subarray(100 * 512 + 3, 100 * 512 + 13));
  await layer.close();
});

test('a pending log is replayed in memory: a BAT update and a data sector appear, the file is untouched', async () => {
  const content = sample(4 * MiB);
  const image = await write(content);
  const layer0 = await open(image);
  const end = image.length;
  // A crash after block 2's data was written at the end of the file but before its BAT
  // entry was: the log holds the BAT sector with the new entry.
  const newBlock = randomBytes(MiB);
  const grown = Buffer.concat([image, newBlock]);
  const batSector = Buffer.from(grown.subarray(3 * MiB, 3 * MiB + 4096));
  setBatEntry(batSector, 2, PAYLOAD_FULLY_PRESENT, end);
  const patched = Buffer.from(newBlock.subarray(0, 4096)).fill(0x77, 0, 4096);
  const entry = buildLogEntry({
    sequence: 42n,
    tail: 0,
    logGuid: '5eed5eed-0000-4000-8000-000000000001',
    flushedFileOffset: end,
    lastFileOffset: end + MiB,
    descriptors: [
      { kind: 'data', fileOffset: 3 * MiB, data: batSector },
      { kind: 'data', fileOffset: end + 4096, data: patched },
    ],
  });
  entry.copy(grown, TEST_LAYOUT.logOffset);
  setLogGuid(grown, '5eed5eed-0000-4000-8000-000000000001');
  const before = Buffer.from(grown);
  const layer = await open(grown);
  assert.equal(layer.info.details.logReplayed, true);
  assert.match(layer.info.warnings.join('\n'), /replayed in memory/);
  const expected = Buffer.from(content);
  newBlock.copy(expected, 2 * MiB);
  patched.copy(expected, 2 * MiB + 4096);
  assert.deepEqual(await layer.read(0, 4 * MiB), expected);
  assert.deepEqual(grown, before);
  assert.deepEqual(await layer0.read(2 * MiB, MiB), Buffer.alloc(MiB));
});

test('the current header is the valid one with the highest sequence number', async () => {
  const image = await write(sample(2 * MiB));
  const a = Buffer.from(image);
  a.writeBigUInt64LE(9n, HEADER_OFFSETS[0] + 8);
  a.write('ffffffff', HEADER_OFFSETS[0] + 32, 'hex');
  rehashHeader(a, 1);
  assert.match((await open(a)).info.id as string, /^ffffffff-/);
  const b = Buffer.from(a);
  b[HEADER_OFFSETS[0] + 200] = 1; // header 1 checksum breaks: header 2 is used
  const lb = await open(b);
  assert.doesNotMatch(lb.info.id as string, /^ffffffff-/);
  assert.match(lb.info.warnings.join(), /header 1 is not valid/);
  b[HEADER_OFFSETS[1] + 200] = 1;
  await assert.rejects(open(b), { code: 'FERRY_IMAGE_CORRUPT', message: /no valid VHDX header/ });
});

test('a damaged first region table falls back to the second copy', async () => {
  const image = await write(sample(2 * MiB));
  image[REGION_TABLE_OFFSETS[0] + 40] = 0xee;
  const layer = await open(image);
  assert.match(layer.info.warnings.join(), /region table 1/);
  image[REGION_TABLE_OFFSETS[1] + 40] = 0xee;
  await assert.rejects(open(image), { code: 'FERRY_IMAGE_CORRUPT', message: /region table/ });
});

test('unknown required metadata or regions are unsupported; optional ones are ignored', async () => {
  const base = { virtualSize: 2 * MiB, blockSize: MiB };
  const item = (flags: number) => ({
    guid: '12345678-1234-1234-1234-123456789abc',
    data: Buffer.alloc(8),
    flags,
  });
  await open(buildTestImage({ ...base, extraMetadata: [item(0)] }).bytes);
  await open(buildTestImage({ ...base, extraMetadata: [item(1)] }).bytes); // user item, not required
  await assert.rejects(open(buildTestImage({ ...base, extraMetadata: [item(4)] }).bytes), {
    code: 'FERRY_IMAGE_UNSUPPORTED',
  });
  assert.ok(GUID_BAT_REGION);
});

test('BAT entries: bad states, reserved bits, offsets past the end or overlapping are refused', async () => {
  const img = buildTestImage({
    virtualSize: 4 * MiB,
    blockSize: MiB,
    blocks: new Map([
      [0, { state: PAYLOAD_FULLY_PRESENT, data: Buffer.alloc(10, 1) }],
      [1, { state: PAYLOAD_FULLY_PRESENT }],
    ]),
  });
  const ok = await open(img.bytes);
  assert.equal((await ok.map(0, 4 * MiB)).length, 2);
  const cases: Array<[string, (b: Buffer) => void, string]> = [
    [
      'state 4',
      (b) => b.writeUInt32LE(((b.readUInt32LE(img.batOffset) >>> 3) << 3) | 4, img.batOffset),
      'CORRUPT',
    ],
    ['partial w/o parent', (b) => setBatEntry(b, 0, PAYLOAD_PARTIALLY_PRESENT, 4 * MiB), 'CORRUPT'],
    ['reserved', (b) => b.writeUInt32LE(b.readUInt32LE(img.batOffset) | 0x100, img.batOffset), 'CORRUPT'],
    ['past end', (b) => setBatEntry(b, 0, PAYLOAD_FULLY_PRESENT, 1024 * MiB), 'TRUNCATED'],
    [
      'overlap',
      (b) => setBatEntry(b, 1, PAYLOAD_FULLY_PRESENT, img.blockOffsets.get(0) as number),
      'CORRUPT',
    ],
    ['into BAT', (b) => setBatEntry(b, 1, PAYLOAD_FULLY_PRESENT, 3 * MiB), 'CORRUPT'],
    ['header', (b) => setBatEntry(b, 1, PAYLOAD_FULLY_PRESENT, 0), 'CORRUPT'],
  ];
  for (const [what, patch, code] of cases) {
    const b = Buffer.from(img.bytes);
    patch(b.subarray(what === 'state 4' || what === 'reserved' ? 0 : img.batOffset));
    await assert.rejects(open(b), { code: `FERRY_IMAGE_${code}` }, what);
  }
  const zero = Buffer.from(img.bytes);
  setBatEntry(zero.subarray(img.batOffset), 0, PAYLOAD_NOT_PRESENT, 0);
  assert.equal((await (await open(zero)).map(0, MiB))[0]?.kind, 'unallocated');
});

test('probe never throws and only matches the signature', async () => {
  assert.equal(await vhdxDriver.probe(new MemorySource(Buffer.from('vhdxfil'))), false);
  assert.equal(await vhdxDriver.probe(new MemorySource(Buffer.alloc(0))), false);
  assert.equal(await vhdxDriver.probe(new MemorySource(Buffer.from('vhdxfile'))), true);
  await assert.rejects(open(Buffer.from('vhdxfile')), { code: 'FERRY_IMAGE_TRUNCATED' });
});
