import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_VMDK_EXTENTS } from '../../limits.js';
import {
  descriptorText,
  formatCid,
  formatDescriptor,
  looksLikeDescriptor,
  parseDescriptor,
} from './descriptor.js';

const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;

const SPLIT = [
  '# Disk DescriptorFile',
  'version=1',
  'CID=1a2B3c4d',
  'parentCID=ffffffff',
  'createType="twoGbMaxExtentSparse"',
  '',
  '# Extent description',
  'RW 4192256 SPARSE "disk-s001.vmdk"',
  'RDONLY 2048 FLAT "disk-flat.vmdk" 16',
  'RW 1024 ZERO',
  'RW 8 VMFS "thin-flat.vmdk"',
  '',
  '#DDB',
  'ddb.adapterType = "lsilogic"',
  'ddb.virtualHWVersion = "4"',
].join('\r\n');

test('parses a descriptor with CRLF, comments, quotes and every readable extent type', () => {
  const d = parseDescriptor(SPLIT, 'd.vmdk', { embedded: false });
  assert.equal(d.version, 1);
  assert.equal(formatCid(d.cid as number), '1a2b3c4d');
  assert.equal(d.parentCid, 0xffffffff);
  assert.equal(d.createType, 'twoGbMaxExtentSparse');
  assert.equal(d.parentFileNameHint, undefined);
  assert.deepEqual(
    d.extents.map((e) => [e.access, e.sectors, e.type, e.file, e.offsetSectors]),
    [
      ['RW', 4192256, 'SPARSE', 'disk-s001.vmdk', 0],
      ['RDONLY', 2048, 'FLAT', 'disk-flat.vmdk', 16],
      ['RW', 1024, 'ZERO', undefined, 0],
      ['RW', 8, 'VMFS', 'thin-flat.vmdk', 0],
    ],
  );
  assert.equal(d.extentBytes, (4192256 + 2048 + 1024 + 8) * 512);
  assert.equal(d.ddb.adaptertype, 'lsilogic');
});

test('unquoted createType (OVFTool) and parentFileNameHint are read', () => {
  const d = parseDescriptor(
    'version=1\nCID=00000001\nparentCID=0000abcd\ncreateType=streamOptimized\nparentFileNameHint="base.vmdk"\n',
    'x',
    { embedded: true },
  );
  assert.equal(d.createType, 'streamOptimized');
  assert.equal(d.parentFileNameHint, 'base.vmdk');
  assert.equal(formatCid(d.parentCid as number), '0000abcd');
});

test('embedded descriptors ignore their extent lines (QEMU does too)', () => {
  const d = parseDescriptor('version=1\nCID=1\nRW banana SPARSE "x"\n', 'x', { embedded: true });
  assert.equal(d.extents.length, 0);
});

test('numbers are strict: junk, overflow, zero and signs are refused', () => {
  const make = (line: string) => () =>
    parseDescriptor(`version=1\ncreateType="monolithicFlat"\n${line}\n`, 'x', { embedded: false });
  assert.throws(make('RW 12abc FLAT "f" 0'), code('FERRY_IMAGE_CORRUPT'));
  assert.throws(make('RW -5 FLAT "f" 0'), code('FERRY_IMAGE_CORRUPT'));
  assert.throws(make('RW 0 FLAT "f" 0'), code('FERRY_IMAGE_CORRUPT'));
  assert.throws(make('RW 99999999999999999999 FLAT "f" 0'), code('FERRY_IMAGE_TOO_LARGE'));
  assert.throws(make('RW 100 FLAT "f" 1e3'), code('FERRY_IMAGE_CORRUPT'));
  assert.throws(make('RW 100 FLAT "f"'), code('FERRY_IMAGE_CORRUPT'));
  assert.throws(make('RW 100 SPARSE "f" 7'), code('FERRY_IMAGE_CORRUPT'));
  assert.throws(make('RW 100 SPARSE'), code('FERRY_IMAGE_CORRUPT'));
  assert.throws(make('RW 100 BOGUS "f"'), code('FERRY_IMAGE_CORRUPT'));
  assert.throws(make('NOACCESS 100 FLAT "f" 0'), code('FERRY_IMAGE_UNSUPPORTED'));
  assert.throws(make('RW 100 VMFSRDM "f"'), code('FERRY_IMAGE_UNSUPPORTED'));
  assert.throws(make('RW 100 SESPARSE "f"'), code('FERRY_IMAGE_UNSUPPORTED'));
});

test('extent totals and counts are capped', () => {
  const many = Array.from({ length: MAX_VMDK_EXTENTS + 1 }, () => 'RW 1 ZERO').join('\n');
  assert.throws(
    () => parseDescriptor(`version=1\n${many}`, 'x', { embedded: false }),
    code('FERRY_IMAGE_TOO_LARGE'),
  );
  const huge = Array.from({ length: 5 }, () => `RW ${2 ** 36} ZERO`).join('\n');
  assert.throws(
    () => parseDescriptor(`version=1\n${huge}`, 'x', { embedded: false }),
    code('FERRY_IMAGE_TOO_LARGE'),
  );
});

test('version and CID are checked', () => {
  assert.throws(() => parseDescriptor('CID=1\n', 'x', { embedded: true }), code('FERRY_IMAGE_CORRUPT'));
  assert.throws(
    () => parseDescriptor('version=7\n', 'x', { embedded: true }),
    code('FERRY_IMAGE_UNSUPPORTED'),
  );
  assert.throws(
    () => parseDescriptor('version=1\nCID=xyz\n', 'x', { embedded: true }),
    code('FERRY_IMAGE_CORRUPT'),
  );
  assert.throws(
    () => parseDescriptor('version=1\nCID=123456789\n', 'x', { embedded: true }),
    code('FERRY_IMAGE_CORRUPT'),
  );
});

test('probe text rules: header comment, or version= then createType=, never random text', () => {
  assert.ok(looksLikeDescriptor('# Disk DescriptorFile\nversion=1\n'));
  assert.ok(looksLikeDescriptor('\n# comment\r\nversion=1\r\ncreateType="vmfs"\r\n'));
  assert.ok(!looksLikeDescriptor('version=1\n'));
  assert.ok(!looksLikeDescriptor('hello\nversion=1\ncreateType="vmfs"\n'));
  assert.ok(!looksLikeDescriptor(''));
});

test('the written descriptor parses back, NUL padding ends it', () => {
  const text = formatDescriptor({
    cid: 0xdeadbeef,
    createType: 'streamOptimized',
    capacitySectors: 2 ** 21,
    fileName: 'a"b.vmdk',
  });
  const buf = Buffer.alloc(4096);
  buf.write(text);
  buf.write('CID=00000000', 3000); // garbage after the NUL must not be read
  const d = parseDescriptor(descriptorText(buf), 'x', { embedded: false });
  assert.equal(formatCid(d.cid as number), 'deadbeef');
  assert.equal(d.parentCid, 0xffffffff);
  assert.equal(d.createType, 'streamOptimized');
  assert.deepEqual(
    d.extents.map((e) => [e.sectors, e.type, e.file]),
    [[2 ** 21, 'SPARSE', 'ab.vmdk']],
  );
  assert.equal(d.ddb['geometry.heads'], '255');
  assert.equal(d.ddb['geometry.cylinders'], String(Math.floor(2 ** 21 / (255 * 63))));
});
