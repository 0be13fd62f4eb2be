import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildMetadataRegion,
  buildParentLocator,
  standardMetadataItems,
  type MetadataItem,
} from './build.js';
import { GUID_PARENT_LOCATOR, MiB } from './layout.js';
import { locateItems, parseItems, parseParentLocator, type ItemBytes } from './metadata.js';

const params = {
  blockSize: 32 * MiB,
  virtualSize: 10 * MiB,
  logicalSectorSize: 512,
  physicalSectorSize: 4096,
  virtualDiskId: '12345678-9abc-def0-1234-56789abcdef0',
};

function parse(items: MetadataItem[]) {
  const region = buildMetadataRegion(items);
  const where = locateItems('m', region.subarray(0, 64 * 1024), MiB);
  const get = (l: { offset: number; length: number } | undefined) =>
    l ? region.subarray(l.offset, l.offset + l.length) : undefined;
  const bytes: ItemBytes = {
    fileParameters: get(where.fileParameters) as Buffer,
    virtualDiskSize: get(where.virtualDiskSize) as Buffer,
    page83: get(where.page83) as Buffer,
    logicalSectorSize: get(where.logicalSectorSize) as Buffer,
    physicalSectorSize: get(where.physicalSectorSize) as Buffer,
    parentLocator: get(where.parentLocator),
  };
  return parseItems('m', bytes);
}

test('the standard items decode', () => {
  const m = parse(standardMetadataItems(params));
  assert.equal(m.blockSize, 32 * MiB);
  assert.equal(m.virtualSize, 10 * MiB);
  assert.equal(m.physicalSectorSize, 4096);
  assert.equal(m.virtualDiskId, params.virtualDiskId);
  assert.equal(m.hasParent, false);
  assert.equal(m.parent, undefined);
});

test('bad values are refused with the right kind', () => {
  const bad = (over: Partial<typeof params>, code: string) =>
    assert.throws(() => parse(standardMetadataItems({ ...params, ...over })), { code }, JSON.stringify(over));
  bad({ blockSize: 0 }, 'FERRY_IMAGE_CORRUPT');
  bad({ blockSize: 3 * MiB }, 'FERRY_IMAGE_CORRUPT');
  bad({ blockSize: 512 * MiB }, 'FERRY_IMAGE_CORRUPT');
  bad({ logicalSectorSize: 1024 }, 'FERRY_IMAGE_CORRUPT');
  bad({ physicalSectorSize: 0 }, 'FERRY_IMAGE_CORRUPT');
  bad({ virtualSize: 1000 }, 'FERRY_IMAGE_CORRUPT');
  bad({ virtualSize: 2 ** 47 }, 'FERRY_IMAGE_TOO_LARGE');
});

test('the table is checked: counts, bounds, overlaps, duplicates, missing items', () => {
  const region = buildMetadataRegion(standardMetadataItems(params));
  const table = () => Buffer.from(region.subarray(0, 64 * 1024));
  assert.throws(() => locateItems('m', Buffer.alloc(64 * 1024), MiB), /signature/);
  const t1 = table();
  t1.writeUInt16LE(3000, 10);
  assert.throws(() => locateItems('m', t1, MiB), /3000 entries/);
  const t2 = table();
  t2.writeUInt32LE(MiB - 4, 32 + 16); // item 0 runs past the region
  assert.throws(() => locateItems('m', t2, MiB), /past the metadata region/);
  const t3 = table();
  t3.writeUInt32LE(100, 32 + 16); // inside the table
  assert.throws(() => locateItems('m', t3, MiB), /invalid/);
  const t4 = table();
  t4.writeUInt32LE(64 * 1024 + 4, 32 + 32 + 16); // item 1 overlaps item 0
  assert.throws(() => locateItems('m', t4, MiB), /overlap/);
  const t5 = table();
  t5.copy(t5, 32 + 32, 32, 48); // item 1 gets item 0's GUID
  assert.throws(() => locateItems('m', t5, MiB), /listed twice/);
  const t6 = table();
  t6.writeUInt16LE(4, 10); // physical sector size item dropped
  assert.throws(() => locateItems('m', t6, MiB), /physicalSectorSize is missing/);
});

test('parent locator: keys, linkage, paths and hostile entries', () => {
  const pl = parseParentLocator(
    'm',
    buildParentLocator([
      ['parent_linkage', '{83ED0EC3-24C8-49A6-A959-5E4BF1288BFB}'],
      ['relative_path', '..\\parent.vhdx'],
      ['volume_path', '\\\\?\\Volume{26A21BDA-A627-11D7-9931-806E6F6E6963}\\p.vhdx'],
    ]),
  );
  assert.equal(pl.linkage, '83ed0ec3-24c8-49a6-a959-5e4bf1288bfb');
  assert.equal(pl.path, '..\\parent.vhdx');
  const onlyAbs = parseParentLocator(
    'm',
    buildParentLocator([
      ['parent_linkage', '{83ED0EC3-24C8-49A6-A959-5E4BF1288BFB}'],
      ['absolute_win32_path', '\\\\?\\C:\\x.vhdx'],
    ]),
  );
  assert.equal(onlyAbs.path, '\\\\?\\C:\\x.vhdx');
  const linkage = ['parent_linkage', '{83ED0EC3-24C8-49A6-A959-5E4BF1288BFB}'] as const;
  assert.throws(() => parseParentLocator('m', buildParentLocator([linkage])), /no parent path/);
  assert.throws(
    () => parseParentLocator('m', buildParentLocator([['relative_path', 'x']])),
    /parent_linkage/,
  );
  assert.throws(
    () =>
      parseParentLocator(
        'm',
        buildParentLocator([
          ['parent_linkage', 'nope'],
          ['relative_path', 'x'],
        ]),
      ),
    /not a GUID/,
  );
  assert.throws(
    () =>
      parseParentLocator('m', buildParentLocator([linkage, ['relative_path', 'a'], ['relative_path', 'b']])),
    /appears twice/,
  );
  assert.throws(
    () => parseParentLocator('m', buildParentLocator([linkage, ['relative_path', 'a\0b']])),
    /NUL/,
  );
  assert.throws(
    () => parseParentLocator('m', buildParentLocator([linkage], '00000000-0000-0000-0000-000000000001')),
    { code: 'FERRY_IMAGE_UNSUPPORTED' },
  );
  const huge = buildParentLocator([linkage, ['relative_path', 'x']]);
  huge.writeUInt16LE(65535, 18);
  assert.throws(() => parseParentLocator('m', huge), { code: 'FERRY_IMAGE_TOO_LARGE' });
  const past = buildParentLocator([linkage, ['relative_path', 'x']]);
  past.writeUInt16LE(60000, 20 + 12 + 10); // value length runs past the item
  assert.throws(() => parseParentLocator('m', past), /invalid/);
  const lengthOdd = buildParentLocator([linkage, ['relative_path', 'x']]);
  lengthOdd.writeUInt16LE(3, 20 + 12 + 10);
  assert.throws(() => parseParentLocator('m', lengthOdd), /invalid/);
});

test('HasParent needs a parent locator; a stray locator is only a warning', () => {
  const items = standardMetadataItems({
    ...params,
    parentLocator: [
      ['parent_linkage', '{83ED0EC3-24C8-49A6-A959-5E4BF1288BFB}'],
      ['relative_path', 'p.vhdx'],
    ],
  });
  assert.equal(parse(items).parent?.path, 'p.vhdx');
  assert.throws(() => parse(items.filter((i) => i.guid !== GUID_PARENT_LOCATOR)), /without a parent locator/);
  const stray = standardMetadataItems(params);
  stray.push({
    guid: GUID_PARENT_LOCATOR,
    data: buildParentLocator([
      ['parent_linkage', '{83ED0EC3-24C8-49A6-A959-5E4BF1288BFB}'],
      ['relative_path', 'p'],
    ]),
    flags: 4,
  });
  assert.match(parse(stray).warnings.join(), /HasParent is not set/);
});
