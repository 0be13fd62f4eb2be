import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../../errors/index.js';
import { MemorySource } from '../../io/byte-source.js';
import { parseHeader } from './header.js';
import { qcow2Driver } from './index.js';
import { EXT, HDR } from './layout.js';
import { buildQcow2, memoryContext } from './testkit.js';
import { codeOf, errorOf } from '../../../../test/helpers/errors.js';

const MiB = 1 << 20;

function parse(img: Buffer) {
  return parseHeader(img.subarray(0, Math.min(img.length, 65536)), img.length, 'disk.qcow2');
}

test('parses a v3 header with its extensions and backing file', () => {
  const { image } = buildQcow2({
    virtualSize: 8 * MiB,
    backingFile: 'base.raw',
    backingFormat: 'raw',
    extensions: [{ type: 0x12345678, data: Buffer.from('ignored') }],
  });
  const h = parse(image);
  assert.equal(h.version, 3);
  assert.equal(h.clusterSize, 65536);
  assert.equal(h.virtualSize, 8 * MiB);
  assert.equal(h.l1Used, 1);
  assert.equal(h.backingFile, 'base.raw');
  assert.equal(h.backingFormat, 'raw');
  assert.equal(h.backingFormatName, 'raw');
  assert.ok(Object.isFrozen(h));
});

test('v2 headers are 72 bytes with implicit v3 fields', () => {
  const { image } = buildQcow2({ virtualSize: MiB, version: 2 });
  const h = parse(image);
  assert.equal(h.version, 2);
  assert.equal(h.headerLength, 72);
  assert.equal(h.refcountOrder, 4);
  assert.equal(h.incompatible, 0n);
});

test('maps QEMU backing format names to Ferry formats and refuses unknown ones', () => {
  const base = { virtualSize: MiB, backingFile: 'b' };
  assert.equal(parse(buildQcow2({ ...base, backingFormat: 'vpc' }).image).backingFormat, 'vhd');
  assert.equal(parse(buildQcow2({ ...base, backingFormat: 'qcow2' }).image).backingFormat, 'qcow2');
  assert.equal(
    codeOf(() => parse(buildQcow2({ ...base, backingFormat: 'qed' }).image)),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  assert.equal(
    codeOf(() => parse(buildQcow2({ ...base, backingFormat: 'much-too-long-fmt' }).image)),
    'FERRY_IMAGE_CORRUPT',
  );
});

test('refuses encryption: AES and LUKS are unsupported, a stray FDE header is corrupt', () => {
  for (const crypt of [1, 2, 7]) {
    const e = errorOf(() => parse(buildQcow2({ virtualSize: MiB, cryptMethod: crypt }).image));
    assert.equal(e.code, 'FERRY_IMAGE_UNSUPPORTED');
    assert.equal(e.details.field, 'crypt_method');
  }
  const fde = buildQcow2({
    virtualSize: MiB,
    extensions: [{ type: EXT.fullDiskEncryption, data: Buffer.alloc(16) }],
  });
  assert.equal(
    codeOf(() => parse(fde.image)),
    'FERRY_IMAGE_CORRUPT',
  );
});

test('unknown incompatible bits are refused, naming the bits and their feature names', () => {
  const names = Buffer.alloc(48);
  names[0] = 0;
  names[1] = 9;
  names.write('future-feature', 2);
  const { image } = buildQcow2({
    virtualSize: MiB,
    incompatible: (1n << 9n) | (1n << 40n),
    extensions: [{ type: EXT.featureNameTable, data: names }],
  });
  const e = errorOf(() => parse(image));
  assert.equal(e.code, 'FERRY_IMAGE_UNSUPPORTED');
  assert.match(e.message, /9 \(future-feature\), 40/);
  assert.equal(e.details.bits, '9,40');
});

test('dirty and corrupt bits are reported, not refused; compatible and autoclear bits are ignored', () => {
  const h = parse(
    buildQcow2({ virtualSize: MiB, incompatible: 3n, compatible: 0xffn, autoclear: 1n << 7n }).image,
  );
  assert.equal(h.dirty, true);
  assert.equal(h.corrupt, true);
  assert.equal(h.lazyRefcounts, true);
});

test('version, cluster_bits and header_length are checked', () => {
  const { image } = buildQcow2({ virtualSize: MiB });
  const patched = (at: number, v: number) => {
    const b = Buffer.from(image);
    b.writeUInt32BE(v, at);
    return b;
  };
  assert.equal(
    codeOf(() => parse(patched(HDR.version, 1))),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  assert.equal(
    codeOf(() => parse(patched(HDR.version, 4))),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  assert.equal(
    codeOf(() => parse(patched(HDR.clusterBits, 8))),
    'FERRY_IMAGE_CORRUPT',
  );
  assert.equal(
    codeOf(() => parse(patched(HDR.clusterBits, 22))),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  assert.equal(
    codeOf(() => parse(patched(HDR.headerLength, 100))),
    'FERRY_IMAGE_CORRUPT',
  );
  assert.equal(
    codeOf(() => parse(patched(HDR.headerLength, 0xffffff00))),
    'FERRY_IMAGE_CORRUPT',
  );
  assert.equal(
    codeOf(() => parse(patched(HDR.refcountOrder, 7))),
    'FERRY_IMAGE_CORRUPT',
  );
  assert.equal(
    codeOf(() => parse(patched(HDR.magic, 0x514649fa))),
    'FERRY_IMAGE_CORRUPT',
  );
});

test('L1, refcount and snapshot tables are bounded, aligned and inside the file', () => {
  const { image } = buildQcow2({ virtualSize: 64 * MiB });
  const p32 = (at: number, v: number) => {
    const b = Buffer.from(image);
    b.writeUInt32BE(v, at);
    return b;
  };
  const p64 = (at: number, v: bigint) => {
    const b = Buffer.from(image);
    b.writeBigUInt64BE(v, at);
    return b;
  };
  assert.equal(
    codeOf(() => parse(p32(HDR.l1Size, 0xffffffff))),
    'FERRY_IMAGE_TOO_LARGE',
  );
  assert.equal(
    codeOf(() => parse(p32(HDR.l1Size, 0))),
    'FERRY_IMAGE_CORRUPT',
  ); // too small for the size
  assert.equal(
    codeOf(() => parse(p32(HDR.l1Size, 100000))),
    'FERRY_IMAGE_TRUNCATED',
  );
  assert.equal(
    codeOf(() => parse(p64(HDR.l1TableOffset, 0n))),
    'FERRY_IMAGE_CORRUPT',
  ); // on the header
  assert.equal(
    codeOf(() => parse(p64(HDR.l1TableOffset, 4096n))),
    'FERRY_IMAGE_CORRUPT',
  ); // misaligned
  assert.equal(
    codeOf(() => parse(p64(HDR.l1TableOffset, 1n << 62n))),
    'FERRY_IMAGE_TRUNCATED',
  );
  assert.equal(
    codeOf(() => parse(p64(HDR.size, 1n << 62n))),
    'FERRY_IMAGE_TOO_LARGE',
  );
  assert.equal(
    codeOf(() => parse(p32(HDR.refcountTableClusters, 1 << 20))),
    'FERRY_IMAGE_TOO_LARGE',
  );
  assert.equal(
    codeOf(() => parse(p64(HDR.refcountTableOffset, 512n))),
    'FERRY_IMAGE_CORRUPT',
  );
  assert.equal(
    codeOf(() => parse(p64(HDR.refcountTableOffset, 1n << 40n))),
    'FERRY_IMAGE_TRUNCATED',
  );
  assert.equal(
    codeOf(() => parse(p32(HDR.nbSnapshots, 1 << 20))),
    'FERRY_IMAGE_TOO_LARGE',
  );
  const snaps = p32(HDR.nbSnapshots, 2);
  snaps.writeBigUInt64BE(1n << 30n, HDR.snapshotsOffset);
  assert.equal(
    codeOf(() => parse(snaps)),
    'FERRY_IMAGE_TRUNCATED',
  );
});

test('header extensions must fit before the backing name / end of the first cluster', () => {
  const { image } = buildQcow2({ virtualSize: MiB, extensions: [{ type: 0x1234, data: Buffer.alloc(16) }] });
  const b = Buffer.from(image);
  b.writeUInt32BE(0x7fffffff, 112 + 4); // extension length
  assert.equal(
    codeOf(() => parse(b)),
    'FERRY_IMAGE_CORRUPT',
  );
  const c = Buffer.from(image);
  c.writeBigUInt64BE(1n << 20n, HDR.backingFileOffset); // past the first cluster
  assert.equal(
    codeOf(() => parse(c)),
    'FERRY_IMAGE_CORRUPT',
  );
});

test('backing file names are bounded by 1023 bytes and the first cluster; empty means none', () => {
  const { image } = buildQcow2({ virtualSize: MiB, backingFile: 'x' });
  const long = Buffer.from(image);
  long.writeUInt32BE(1024, HDR.backingFileSize);
  assert.equal(
    codeOf(() => parse(long)),
    'FERRY_IMAGE_CORRUPT',
  );
  const empty = Buffer.from(image);
  empty.writeUInt32BE(0, HDR.backingFileSize);
  assert.equal(parse(empty).backingFile, undefined);
});

test('compression type and its incompatible bit must agree; unknown types are unsupported', () => {
  const zstd = parse(buildQcow2({ virtualSize: MiB, compression: 'zstd' }).image);
  assert.equal(zstd.compressionType, 1);
  const noBit = buildQcow2({ virtualSize: MiB, compression: 'zstd' }).image;
  noBit.writeBigUInt64BE(0n, HDR.incompatibleFeatures);
  assert.equal(
    codeOf(() => parse(noBit)),
    'FERRY_IMAGE_CORRUPT',
  );
  const bitOnly = buildQcow2({ virtualSize: MiB, incompatible: 1n << 3n }).image;
  assert.equal(
    codeOf(() => parse(bitOnly)),
    'FERRY_IMAGE_CORRUPT',
  );
  const unknown = buildQcow2({ virtualSize: MiB, compression: 'zstd' }).image;
  unknown[HDR.compressionType] = 9;
  assert.equal(
    codeOf(() => parse(unknown)),
    'FERRY_IMAGE_UNSUPPORTED',
  );
});

test('extended L2 needs 16 KiB clusters; data files must be named; raw data needs a data file', () => {
  assert.equal(
    codeOf(() => parse(buildQcow2({ virtualSize: MiB, extendedL2: true, clusterBits: 13 }).image)),
    'FERRY_IMAGE_CORRUPT',
  );
  assert.equal(
    codeOf(() => parse(buildQcow2({ virtualSize: MiB, incompatible: 1n << 2n }).image)),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  assert.equal(
    codeOf(() => parse(buildQcow2({ virtualSize: MiB, autoclear: 2n }).image)),
    'FERRY_IMAGE_CORRUPT',
  );
  const h = parse(buildQcow2({ virtualSize: MiB, dataFile: 'disk.data', dataFileRaw: true }).image);
  assert.equal(h.dataFile, 'disk.data');
  assert.equal(h.dataFileRaw, true);
});

test('the virtual size is rounded down to whole sectors, like QEMU', () => {
  const { image } = buildQcow2({ virtualSize: MiB });
  image.writeBigUInt64BE(BigInt(MiB - 100), HDR.size);
  assert.equal(parse(image).virtualSize, MiB - 512);
});

test('probe matches the magic only and never throws; a tiny file fails to open as truncated', async () => {
  assert.equal(await qcow2Driver.probe(new MemorySource(Buffer.from('QFI'))), false);
  assert.equal(await qcow2Driver.probe(new MemorySource(Buffer.from('QFI\xfb', 'latin1'))), true);
  assert.equal(await qcow2Driver.probe(new MemorySource(Buffer.alloc(0))), false);
  const { image } = buildQcow2({ virtualSize: MiB });
  for (const cut of [4, 30, 71, 100, 200, 65535]) {
    await assert.rejects(
      qcow2Driver.open(new MemorySource(image.subarray(0, cut)), memoryContext()),
      (e: unknown) => FerryError.is(e) && /TRUNCATED|CORRUPT/.test(e.code),
    );
  }
});
