import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSparseHeader, type HeaderFields } from './build.js';
import { parseCowdHeader, parseSparseHeader } from './header.js';
import {
  COWD,
  COWD_MAGIC,
  FLAG_COMPRESSED,
  FLAG_MARKERS,
  FLAG_NL_DETECT,
  FLAG_RGD,
  GD_AT_END,
  HDR,
} from './layout.js';

const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;

const BASE: HeaderFields = {
  version: 1,
  flags: FLAG_NL_DETECT | FLAG_RGD,
  capacitySectors: 2048,
  grainSectors: 128,
  descriptorOffset: 1,
  descriptorSectors: 20,
  rgdOffset: 21,
  gdOffset: 26,
  overHeadSectors: 128,
  compressed: false,
};
const FILE = 1 << 20;

function parse(patch: Partial<HeaderFields> = {}, mutate?: (b: Buffer) => void, size = FILE) {
  const b = buildSparseHeader({ ...BASE, ...patch });
  mutate?.(b);
  return () => parseSparseHeader(b, size, 'h.vmdk');
}

test('a valid header parses into frozen byte offsets', () => {
  const h = parse()();
  assert.ok(Object.isFrozen(h));
  assert.equal(h.capacitySectors, 2048);
  assert.equal(h.grainSectors, 128);
  assert.equal(h.gdOffset, 26 * 512);
  assert.equal(h.gdEntries, 1);
  assert.equal(h.descriptorOffset, 512);
  assert.equal(h.descriptorBytes, 20 * 512);
  assert.equal(h.compressed, false);
  assert.equal(h.gdAtEnd, false);
});

test('version, flags and compression algorithm outside the spec are unsupported', () => {
  assert.throws(parse({ version: 4 }), code('FERRY_IMAGE_UNSUPPORTED'));
  assert.throws(parse({ version: 0 }), code('FERRY_IMAGE_UNSUPPORTED'));
  assert.throws(parse({ flags: BASE.flags | (1 << 5) }), code('FERRY_IMAGE_UNSUPPORTED'));
  assert.throws(
    parse({}, (b) => b.writeUInt16LE(2, HDR.compressAlgorithm)),
    code('FERRY_IMAGE_UNSUPPORTED'),
  );
  assert.throws(
    parse({}, (b) => b.writeUInt32LE(256, HDR.numGTEsPerGT)),
    code('FERRY_IMAGE_UNSUPPORTED'),
  );
});

test('damaged fields are corrupt', () => {
  assert.throws(
    parse({}, (b) => (b[HDR.doubleEndLineChar1] = 0x0a)),
    code('FERRY_IMAGE_CORRUPT'),
  );
  assert.throws(parse({ grainSectors: 100 }), code('FERRY_IMAGE_CORRUPT'));
  assert.throws(parse({ grainSectors: 0 }), code('FERRY_IMAGE_CORRUPT'));
  assert.throws(
    parse({}, (b) => b.writeUInt32LE(0, HDR.numGTEsPerGT)),
    code('FERRY_IMAGE_CORRUPT'),
  );
  assert.throws(
    parse({}, (b) => b.writeUInt32LE(4096, HDR.numGTEsPerGT)),
    code('FERRY_IMAGE_CORRUPT'),
  );
  assert.throws(parse({ flags: FLAG_COMPRESSED }), code('FERRY_IMAGE_CORRUPT'));
  assert.throws(parse({ gdOffset: 0 }), code('FERRY_IMAGE_CORRUPT'));
  assert.throws(parse({ gdOffset: GD_AT_END }), code('FERRY_IMAGE_CORRUPT')); // no markers
  assert.throws(
    parse({}, (b) => b.writeUInt32LE(0, 0)),
    code('FERRY_IMAGE_CORRUPT'),
  );
});

test('offsets and sizes beyond the file or the limits are refused', () => {
  assert.throws(parse({ gdOffset: FILE / 512 }), code('FERRY_IMAGE_TRUNCATED'));
  assert.throws(parse({ gdOffset: 2n ** 63n }), code('FERRY_IMAGE_TRUNCATED'));
  assert.throws(parse({ overHeadSectors: FILE }), code('FERRY_IMAGE_TRUNCATED'));
  assert.throws(parse({ descriptorOffset: 2040, descriptorSectors: 20 }), code('FERRY_IMAGE_TRUNCATED'));
  assert.throws(parse({ rgdOffset: 0 }), code('FERRY_IMAGE_CORRUPT'));
  assert.throws(parse({ grainSectors: 4096 }), code('FERRY_IMAGE_TOO_LARGE'));
  assert.throws(parse({ descriptorSectors: 1 << 20 }), code('FERRY_IMAGE_TOO_LARGE'));
  assert.throws(
    parse({}, (b) => b.writeBigUInt64LE(2n ** 62n, HDR.capacity)),
    code('FERRY_IMAGE_TOO_LARGE'),
  );
  // 64 TiB with 512-byte grains needs a 512 MiB directory: over the table cap.
  assert.throws(parse({ capacitySectors: 2 ** 37, grainSectors: 1 }), code('FERRY_IMAGE_TOO_LARGE'));
});

test('a stream header may point at the footer', () => {
  const h = parse({
    version: 3,
    flags: FLAG_NL_DETECT | FLAG_COMPRESSED | FLAG_MARKERS,
    compressed: true,
    gdOffset: GD_AT_END,
    rgdOffset: 0,
  })();
  assert.equal(h.gdAtEnd, true);
  assert.equal(h.compressed, true);
  assert.equal(h.markers, true);
});

test('COWD headers: version, grain and directory are checked', () => {
  const cowd = (f: (b: Buffer) => void = () => {}) => {
    const b = Buffer.alloc(512);
    b.writeUInt32LE(COWD_MAGIC, 0);
    b.writeUInt32LE(1, COWD.version);
    b.writeUInt32LE(3, COWD.flags);
    b.writeUInt32LE(4096 * 16, COWD.capacity);
    b.writeUInt32LE(1, COWD.grainSize);
    b.writeUInt32LE(4, COWD.gdOffset);
    b.writeUInt32LE(16, COWD.numGDEntries);
    f(b);
    return () => parseCowdHeader(b, 1 << 20, 'c.vmdk');
  };
  const g = cowd()();
  assert.equal(g.gtesPerGt, 4096);
  assert.equal(g.gdEntries, 16);
  assert.throws(
    cowd((b) => b.writeUInt32LE(2, COWD.version)),
    code('FERRY_IMAGE_UNSUPPORTED'),
  );
  assert.throws(
    cowd((b) => b.writeUInt32LE(15, COWD.numGDEntries)),
    code('FERRY_IMAGE_CORRUPT'),
  );
  assert.throws(
    cowd((b) => b.writeUInt32LE(3, COWD.grainSize)),
    code('FERRY_IMAGE_CORRUPT'),
  );
  assert.throws(
    cowd((b) => b.writeUInt32LE(1 << 20, COWD.gdOffset)),
    code('FERRY_IMAGE_TRUNCATED'),
  );
});
