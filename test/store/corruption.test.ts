/**
 * Corruption is detected and reported with coded errors, never returned as data: flipped
 * bits anywhere, truncated packs, missing packs, missing index entries, tampered records.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checksumDisk, driverFor, MemorySink } from '../../src/disk/index.js';
import {
  checkRepository,
  exportImage,
  listAll,
  listImages,
  MemoryBackend,
  openImageDisk,
  Repository,
  writeImage,
  type ServerImage,
} from '../../src/store/index.js';
import { memoryDisk, memoryRepo, mixedDisk, TEST_KEY } from './helpers.js';

async function setup(): Promise<{ backend: MemoryBackend; repo: Repository; image: ServerImage }> {
  const backend = new MemoryBackend();
  const repo = await memoryRepo(undefined, backend);
  const image = await writeImage(repo, {
    name: 'x',
    disks: [{ name: 'd', disk: await memoryDisk(mixedDisk(1 << 20, 2)) }],
    threads: 0,
    packBytes: 128 * 1024,
  });
  return { backend, repo, image };
}

async function readAll(repo: Repository, id: string): Promise<string> {
  const fresh = await Repository.open(repo.backend, TEST_KEY.master);
  const v = await openImageDisk(fresh, id, 0);
  try {
    return await checksumDisk(v.disk);
  } finally {
    await v.disk.close();
  }
}

async function exportRaw(repo: Repository, id: string): Promise<void> {
  const writer = await driverFor('raw').createWriter!(new MemorySink(), { virtualSize: 1 << 20 });
  await exportImage(repo, id, 0, writer);
}

async function packsOf(backend: MemoryBackend, type: 'data' | 'tree'): Promise<string[]> {
  // Tree packs are the small ones here (a 1 MiB disk has 16 nodes of ≤ 512 B).
  const packs = (await listAll(backend, 'data/')).sort((a, b) => a.size - b.size);
  return (type === 'tree' ? packs.slice(0, 1) : packs.slice(-2)).map((p) => p.key);
}

const codes = async (repo: Repository, readData = false) =>
  (await checkRepository(repo, { readData })).errors.map((e) => e.code);

test('a clean repository checks clean, with and without --read-data', async () => {
  const { repo } = await setup();
  assert.deepEqual(await codes(repo), []);
  assert.deepEqual(await codes(repo, true), []);
});

test('a flipped bit in a data blob: reads fail FERRY_STORE_CORRUPT, check --read-data reports it', async () => {
  for (const where of [0.1, 0.5, 0.9]) {
    const { backend, repo, image } = await setup();
    const key = (await packsOf(backend, 'data'))[0]!;
    const obj = backend.objects.get(key)!;
    const at = Math.floor(obj.length * where * 0.8);
    obj[at]! ^= 0x10;
    await assert.rejects(readAll(repo, image.id), { code: 'FERRY_STORE_CORRUPT' });
    await assert.rejects(exportRaw(repo, image.id), { code: 'FERRY_STORE_CORRUPT' });
    assert.ok((await codes(repo, true)).includes('FERRY_STORE_CORRUPT'));
  }
});

test('a flipped bit in a tree node or a pack header is caught by reads and by check', async () => {
  const { backend, repo, image } = await setup();
  const key = (await packsOf(backend, 'tree'))[0]!;
  backend.objects.get(key)![20]! ^= 1;
  await assert.rejects(readAll(repo, image.id), { code: 'FERRY_STORE_CORRUPT' });
  assert.ok((await codes(repo, true)).includes('FERRY_STORE_CORRUPT'));
  const s2 = await setup();
  const k2 = (await packsOf(s2.backend, 'data'))[0]!;
  const o2 = s2.backend.objects.get(k2)!;
  o2[o2.length - 30]! ^= 1; // inside the sealed header
  assert.ok((await codes(s2.repo)).includes('FERRY_STORE_CORRUPT'), 'metadata check reads headers');
});

test('truncated packs: check reports them; reads past the end are FERRY_STORE_TRUNCATED', async () => {
  for (const cut of [1, 12, 500, 40_000]) {
    const { backend, repo, image } = await setup();
    const key = (await packsOf(backend, 'data'))[1]!;
    const obj = backend.objects.get(key)!;
    backend.objects.set(key, obj.subarray(0, Math.max(1, obj.length - cut)));
    const found = await codes(repo);
    assert.ok(
      found.includes('FERRY_STORE_CORRUPT') || found.includes('FERRY_STORE_TRUNCATED'),
      `cut ${cut}: ${found}`,
    );
    if (cut >= 40_000) await assert.rejects(readAll(repo, image.id), { code: 'FERRY_STORE_TRUNCATED' });
  }
});

test('a missing pack or missing index entries: FERRY_STORE_MISSING_CHUNK', async () => {
  const a = await setup();
  a.backend.objects.delete((await packsOf(a.backend, 'data'))[0]!);
  assert.ok((await codes(a.repo)).includes('FERRY_STORE_MISSING_CHUNK'));
  await assert.rejects(readAll(a.repo, a.image.id), { code: 'FERRY_STORE_MISSING_CHUNK' });

  const b = await setup();
  const index = (await listAll(b.backend, 'index/'))[0]!.key;
  b.backend.objects.delete(index);
  assert.ok((await codes(b.repo)).includes('FERRY_STORE_MISSING_CHUNK'));
  await assert.rejects(readAll(b.repo, b.image.id), { code: 'FERRY_STORE_MISSING_CHUNK' });
});

test('tampered index files, records and config are refused', async () => {
  const a = await setup();
  const index = (await listAll(a.backend, 'index/'))[0]!.key;
  a.backend.objects.get(index)![40]! ^= 4;
  assert.ok((await codes(a.repo)).includes('FERRY_STORE_CORRUPT'));
  await assert.rejects(readAll(a.repo, a.image.id), { code: 'FERRY_STORE_CORRUPT' });

  const b = await setup();
  b.backend.objects.get(`images/${b.image.id}`)![30]! ^= 1;
  await assert.rejects(listImages(b.repo), { code: 'FERRY_STORE_CORRUPT' });
  assert.ok((await codes(b.repo)).includes('FERRY_STORE_CORRUPT'));
  // A record copied under another id is refused too.
  b.backend.objects.set('images/ami-00000000000000000', b.backend.objects.get(`images/${b.image.id}`)!);

  const c = await setup();
  const config = JSON.parse(c.backend.objects.get('config')!.toString());
  c.backend.objects.set('config', Buffer.from(JSON.stringify({ ...config, blockSize: 8192 })));
  await assert.rejects(Repository.open(c.backend, TEST_KEY.master), { code: 'FERRY_STORE_CORRUPT' });
});
