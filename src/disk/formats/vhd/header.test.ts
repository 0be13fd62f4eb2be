import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDynamicHeader, buildFooter, chsGeometry } from './build.js';
import { parseDynamicHeader, parseFooter, vhdChecksum } from './header.js';
import { F, H, MAX_CHS_SECTORS } from './layout.js';
import { flipByte } from './testkit.js';
import { codeOf } from '../../../../test/helpers/errors.js';

const ID = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

function footer(over: Partial<Parameters<typeof buildFooter>[0]> = {}): Buffer {
  return buildFooter({
    diskType: 'dynamic',
    size: 10 << 20,
    dataOffset: 512,
    uniqueId: ID,
    timestamp: 1,
    ...over,
  });
}

test('checksum is the ones complement of the byte sum without the checksum field', () => {
  const buf = Buffer.alloc(16, 1);
  buf.writeUInt32BE(0xdeadbeef, 4);
  assert.equal(vhdChecksum(buf, 4), ~12 >>> 0);
});

test('CHS geometry follows the spec algorithm (and matches qemu-img for 12 MiB)', () => {
  assert.deepEqual(chsGeometry(24616), { cylinders: 362, heads: 4, sectorsPerTrack: 17 });
  assert.deepEqual(chsGeometry(MAX_CHS_SECTORS * 2), { cylinders: 65535, heads: 16, sectorsPerTrack: 255 });
  const g = chsGeometry(65535 * 16 * 63);
  assert.equal(g.sectorsPerTrack, 255);
});

test('virtual size: CHS for vpc/qemu creators, current_size for win/qem2/d2v/CTXS/tap and max geometry', () => {
  const geometry = { cylinders: 100, heads: 4, sectorsPerTrack: 17 };
  for (const app of ['vpc ', 'qemu', 'vbox', 'xxxx']) {
    const f = parseFooter(footer({ creatorApp: app, geometry }), 'x', 'footer');
    assert.equal(f.virtualSize, 100 * 4 * 17 * 512, app);
    assert.equal(f.sizeSource, 'chs');
  }
  for (const app of ['win ', 'qem2', 'd2v ', 'CTXS', 'tap\0']) {
    const f = parseFooter(footer({ creatorApp: app, geometry }), 'x', 'footer');
    assert.equal(f.virtualSize, 10 << 20, JSON.stringify(app));
    assert.equal(f.sizeSource, 'current_size');
  }
  const max = parseFooter(
    footer({ creatorApp: 'vpc ', geometry: { cylinders: 65535, heads: 16, sectorsPerTrack: 255 } }),
    'x',
    'footer',
  );
  assert.equal(max.virtualSize, 10 << 20);
  // current_size is truncated to whole sectors, as QEMU does.
  assert.equal(parseFooter(footer({ size: 1000 }), 'x', 'f').virtualSize, 512);
});

test('footer: bad checksum, cookie, version, type and size are refused with the right codes', () => {
  const bad = footer();
  flipByte(bad, F.timestamp);
  assert.equal(
    codeOf(() => parseFooter(bad, 'x', 'f')),
    'FERRY_IMAGE_CORRUPT',
  );
  const cookie = footer();
  cookie.write('conectiX', 0, 'latin1');
  assert.equal(
    codeOf(() => parseFooter(cookie, 'x', 'f')),
    'FERRY_IMAGE_CORRUPT',
  );
  const fix = (b: Buffer) => (b.writeUInt32BE(vhdChecksum(b, F.checksum), F.checksum), b);
  const v2 = footer();
  v2.writeUInt32BE(0x00020000, F.version);
  assert.equal(
    codeOf(() => parseFooter(fix(v2), 'x', 'f')),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  for (const t of [0, 1, 5, 6, 0xffffffff]) {
    const ty = footer();
    ty.writeUInt32BE(t, F.diskType);
    assert.equal(
      codeOf(() => parseFooter(fix(ty), 'x', 'f')),
      'FERRY_IMAGE_UNSUPPORTED',
      String(t),
    );
  }
  const huge = footer({
    size: 2040 * 2 ** 30 + 512,
    geometry: { cylinders: 65535, heads: 16, sectorsPerTrack: 255 },
  });
  assert.equal(
    codeOf(() => parseFooter(huge, 'x', 'f')),
    'FERRY_IMAGE_TOO_LARGE',
  );
  const limit = footer({ size: 2040 * 2 ** 30, creatorApp: 'win ' });
  assert.equal(parseFooter(limit, 'x', 'f').virtualSize, 2040 * 2 ** 30);
  const bigint = footer({ creatorApp: 'win ' });
  bigint.writeBigUInt64BE(0xffff_ffff_ffff_fe00n, F.currentSize);
  assert.equal(
    codeOf(() => parseFooter(fix(bigint), 'x', 'f')),
    'FERRY_IMAGE_TOO_LARGE',
  );
});

test('dynamic header: block size, table size, table offset and locators are validated', () => {
  const f = parseFooter(footer({ creatorApp: 'qem2' }), 'x', 'f');
  const hdr = (over: Partial<Parameters<typeof buildDynamicHeader>[0]> = {}) =>
    buildDynamicHeader({ tableOffset: 1536, maxTableEntries: 5, blockSize: 2 << 20, ...over });
  const fileSize = 64 << 20;
  const ok = parseDynamicHeader(hdr(), f, fileSize, 'x');
  assert.equal(ok.bitmapSize, 512);
  assert.equal(ok.blockSize, 2 << 20);
  assert.equal(
    parseDynamicHeader(hdr({ blockSize: 4096, maxTableEntries: 2560 }), f, fileSize, 'x').bitmapSize,
    512,
  );
  assert.equal(
    parseDynamicHeader(hdr({ blockSize: 128 << 20, maxTableEntries: 1 }), f, fileSize, 'x').bitmapSize,
    32768,
  );
  const c = (h: Buffer, size = fileSize) => codeOf(() => parseDynamicHeader(h, f, size, 'x'));
  assert.equal(c(hdr({ blockSize: 0 })), 'FERRY_IMAGE_CORRUPT');
  assert.equal(c(hdr({ blockSize: 3 << 20 })), 'FERRY_IMAGE_CORRUPT');
  assert.equal(c(hdr({ blockSize: 2048, maxTableEntries: 5120 })), 'FERRY_IMAGE_UNSUPPORTED');
  assert.equal(c(hdr({ blockSize: 2 ** 31 })), 'FERRY_IMAGE_TOO_LARGE');
  assert.equal(c(hdr({ maxTableEntries: 4 })), 'FERRY_IMAGE_CORRUPT'); // cannot map 10 MiB
  assert.equal(c(hdr({ maxTableEntries: 0xffffffff })), 'FERRY_IMAGE_TOO_LARGE');
  assert.equal(c(hdr({ tableOffset: fileSize - 8 })), 'FERRY_IMAGE_TRUNCATED');
  assert.equal(c(hdr({ tableOffset: 2 ** 52 })), 'FERRY_IMAGE_TRUNCATED');
  const sum = hdr();
  flipByte(sum, H.blockSize + 3);
  assert.equal(c(sum), 'FERRY_IMAGE_CORRUPT');
  const cookie = hdr();
  cookie.write('cxsparsE', 0, 'latin1');
  assert.equal(c(cookie), 'FERRY_IMAGE_CORRUPT');
  const v = hdr();
  v.writeUInt32BE(0x00020000, H.version);
  v.writeUInt32BE(vhdChecksum(v, H.checksum), H.checksum);
  assert.equal(c(v), 'FERRY_IMAGE_UNSUPPORTED');
});

test('dynamic header: locators of a differencing disk must lie inside the file and be small', () => {
  const f = parseFooter(footer({ diskType: 'differencing', creatorApp: 'qem2' }), 'x', 'f');
  const loc = (dataOffset: number, dataLength: number) =>
    buildDynamicHeader({
      tableOffset: 1536,
      maxTableEntries: 5,
      blockSize: 2 << 20,
      parentName: 'base.vhd',
      locators: [{ platform: 0x57327275, dataOffset, dataLength, dataSpace: 512 }],
    });
  const h = parseDynamicHeader(loc(4096, 20), f, 1 << 20, 'x');
  assert.equal(h.parentName, 'base.vhd');
  assert.equal(h.locators.length, 1);
  assert.equal(
    codeOf(() => parseDynamicHeader(loc((1 << 20) - 10, 20), f, 1 << 20, 'x')),
    'FERRY_IMAGE_TRUNCATED',
  );
  assert.equal(
    codeOf(() => parseDynamicHeader(loc(4096, 0x7fffffff), f, 1 << 20, 'x')),
    'FERRY_IMAGE_TOO_LARGE',
  );
  // A dynamic disk's locator fields are not used, so garbage there does not matter.
  const dyn = parseFooter(footer({ creatorApp: 'qem2' }), 'x', 'f');
  assert.equal(parseDynamicHeader(loc(2 ** 50, 0x7fffffff), dyn, 1 << 20, 'x').locators.length, 0);
});
