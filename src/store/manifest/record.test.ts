import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RepoConfig } from '../repo/config.js';
import { decodeRecord, isImageId, newImageId } from './record.js';

const config = { blockSize: 65536, fanout: 2048 } as RepoConfig;
const id = 'ami-0123456789abcdef0';
const good = () => ({
  version: 1,
  id,
  name: 'web-1',
  created: '2024-01-01T00:00:00.000Z',
  job: 'nightly',
  disks: [
    {
      index: 0,
      name: 'd0',
      virtualSize: 2 * 1024 ** 3,
      blockSize: 65536,
      fanout: 2048,
      depth: 2,
      root: 'ab'.repeat(32),
      checksum: `sha256-tree:${'cd'.repeat(32)}`,
      stats: { dataBlocks: 1, zeroBlocks: 2, newChunks: 1, newBytes: 65536, storedBytes: 70000 },
    },
  ],
});

test('image ids look like EC2 AMI ids', () => {
  for (let i = 0; i < 50; i++) assert.ok(isImageId(newImageId()));
  for (const bad of [
    'ami-0123',
    'ami-0123456789ABCDEF0',
    'img-0123456789abcdef0',
    '../ami-0123456789abcdef0',
  ]) {
    assert.equal(isImageId(bad), false, bad);
  }
});

test('records: a valid one decodes frozen; every hostile field is FERRY_STORE_CORRUPT or TOO_LARGE', () => {
  const r = decodeRecord(good(), id, config);
  assert.ok(Object.isFrozen(r) && Object.isFrozen(r.disks[0]));
  assert.equal(r.sourceServer, null);
  const mutate = (f: (v: ReturnType<typeof good>) => void) => {
    const v = good();
    f(v);
    return v as unknown as Record<string, unknown>;
  };
  const corrupt: [string, Record<string, unknown>, string?][] = [
    ['other id', good(), 'ami-0123456789abcdef1'],
    ['version', mutate((v) => (v.version = 2))],
    ['depth does not match the size', mutate((v) => (v.disks[0]!.depth = 3))],
    ['block size differs from the repository', mutate((v) => (v.disks[0]!.blockSize = 4096))],
    ['negative size', mutate((v) => (v.disks[0]!.virtualSize = -1))],
    ['size beyond 64 TiB', mutate((v) => (v.disks[0]!.virtualSize = 2 ** 50))],
    ['root not hex', mutate((v) => (v.disks[0]!.root = 'zz'))],
    ['checksum of another kind', mutate((v) => (v.disks[0]!.checksum = 'md5:00'))],
    ['disk index out of order', mutate((v) => (v.disks[0]!.index = 3))],
    ['stats missing', mutate((v) => ((v.disks[0] as { stats?: unknown }).stats = undefined))],
    ['name too long', mutate((v) => (v.name = 'x'.repeat(5000)))],
    ['disks not a list', mutate((v) => ((v as { disks: unknown }).disks = {}))],
  ];
  for (const [what, v, under] of corrupt) {
    assert.throws(() => decodeRecord(v, under ?? id, config), { code: 'FERRY_STORE_CORRUPT' }, what);
  }
  const many = mutate((v) => (v.disks = Array.from({ length: 200 }, () => v.disks[0]!)));
  assert.throws(() => decodeRecord(many, id, config), { code: 'FERRY_STORE_TOO_LARGE' });
});
