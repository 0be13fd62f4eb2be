import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildHeader, buildRegionTable } from './build.js';
import { crc32cWithZeroedField } from './crc32c.js';
import { currentHeader, parseHeader, parseRegionTable, type RegionTable } from './header.js';
import { GUID_BAT_REGION, GUID_METADATA_REGION, MiB } from './layout.js';

const fields = {
  fileWriteGuid: '11111111-1111-1111-1111-111111111111',
  dataWriteGuid: '22222222-2222-2222-2222-222222222222',
  logLength: MiB,
  logOffset: MiB,
};
const log = { offset: MiB, length: MiB };
const regions = [
  { guid: GUID_BAT_REGION, offset: 3 * MiB, length: MiB },
  { guid: GUID_METADATA_REGION, offset: 2 * MiB, length: MiB },
];

test('headers: checksum, sequence choice, version and log fields', () => {
  const h1 = buildHeader({ ...fields, sequence: 5n });
  const h2 = buildHeader({ ...fields, sequence: 6n, dataWriteGuid: '33333333-3333-3333-3333-333333333333' });
  assert.equal(currentHeader('h', h1, h2).header.slot, 2);
  assert.equal(currentHeader('h', h2, h1).header.dataWriteGuid, '33333333-3333-3333-3333-333333333333');
  // Identical headers with equal numbers are fine (Disk2VHD); different ones are not.
  assert.equal(currentHeader('h', h1, Buffer.from(h1)).header.slot, 1);
  const h1b = buildHeader({ ...fields, sequence: 5n, dataWriteGuid: '44444444-4444-4444-4444-444444444444' });
  assert.throws(() => currentHeader('h', h1, h1b), /both VHDX headers/);
  const broken = Buffer.from(h1);
  broken[300] = 9;
  assert.deepEqual(parseHeader(broken, 1), { invalid: 'bad checksum' });
  assert.deepEqual(parseHeader(Buffer.alloc(4096), 1), { invalid: 'bad signature' });
  assert.throws(() => currentHeader('h', broken, Buffer.alloc(4096)), { code: 'FERRY_IMAGE_CORRUPT' });
  const v2 = buildHeader({ ...fields, sequence: 1n, version: 2 });
  assert.throws(() => currentHeader('h', v2, Buffer.alloc(4096)), { code: 'FERRY_IMAGE_UNSUPPORTED' });
  const logV1 = buildHeader({
    ...fields,
    sequence: 1n,
    logVersion: 1,
    logGuid: '55555555-5555-5555-5555-555555555555',
  });
  assert.throws(() => currentHeader('h', logV1, Buffer.alloc(4096)), { code: 'FERRY_IMAGE_UNSUPPORTED' });
  const logV1NoLog = buildHeader({ ...fields, sequence: 1n, logVersion: 1 });
  assert.equal(currentHeader('h', logV1NoLog, Buffer.alloc(4096)).header.logVersion, 1);
  for (const bad of [{ logLength: 12345 }, { logOffset: 4096 }, { logOffset: 0 }, { logOffset: 2 ** 60 }]) {
    const h = buildHeader({ ...fields, sequence: 1n, ...bad });
    assert.throws(
      () => currentHeader('h', h, Buffer.alloc(4096)),
      { code: 'FERRY_IMAGE_CORRUPT' },
      JSON.stringify(bad),
    );
  }
});

test('region table: entries checked, unknown required regions unsupported', () => {
  const t = parseRegionTable('r', buildRegionTable(regions), log);
  assert.deepEqual(t, {
    bat: { offset: 3 * MiB, length: MiB },
    metadata: { offset: 2 * MiB, length: MiB },
    entryCount: 2,
  });
  const unknown = { guid: '01010101-0202-0303-0404-050505050505', offset: 8 * MiB, length: MiB };
  assert.equal(
    (
      parseRegionTable(
        'r',
        buildRegionTable([...regions, { ...unknown, required: false }]),
        log,
      ) as RegionTable
    ).entryCount,
    3,
  );
  assert.throws(() => parseRegionTable('r', buildRegionTable([...regions, unknown]), log), {
    code: 'FERRY_IMAGE_UNSUPPORTED',
  });
  const bad = (rs: Parameters<typeof buildRegionTable>[0], re: RegExp) =>
    assert.throws(() => parseRegionTable('r', buildRegionTable(rs), log), re);
  bad([regions[0]!], /lacks the metadata/);
  bad([regions[0]!, regions[0]!], /listed twice/);
  bad([regions[0]!, { ...regions[1]!, offset: 3 * MiB }], /overlaps/);
  bad([regions[0]!, { ...regions[1]!, offset: MiB }], /overlaps/); // the log
  bad([regions[0]!, { ...regions[1]!, offset: 512 * 1024 }], /aligned/);
  bad([regions[0]!, { ...regions[1]!, length: 0 }], /aligned/);
  bad([regions[0]!, { ...regions[1]!, offset: 2 ** 62 }], /aligned/);
  const many = buildRegionTable(regions);
  many.writeUInt32LE(100000, 8);
  assert.deepEqual(parseRegionTable('r', many, log), { invalid: 'bad checksum' });
  many.writeUInt32LE(crc32cWithZeroedField(many, 4), 4);
  assert.throws(() => parseRegionTable('r', many, log), /100000 entries/);
});
