/**
 * One test matrix for every back end (memory, local directory, S3 through s3rver): the
 * same repository scenarios — write with dedup, read back, export, list, delete, GC,
 * check, reopen, and corruption made through the back end itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { checksumDisk, driverFor, MemorySink } from '../../src/disk/index.js';
import {
  checkRepository,
  collectGarbage,
  deleteImage,
  exportImage,
  listAll,
  listImages,
  LocalBackend,
  MemoryBackend,
  openImageDisk,
  Repository,
  writeImage,
  type Backend,
} from '../../src/store/index.js';
import { pseudoRandom, tempDir } from '../helpers/qemu.js';
import { memoryDisk, memoryRepo, mixedDisk, TEST_KEY } from './helpers.js';
import { s3Backend } from './s3-server.js';

const BACKENDS: [string, () => Promise<Backend>][] = [
  ['memory', async () => new MemoryBackend()],
  ['local', async () => new LocalBackend(join(await tempDir('ferry-matrix-'), 'repo'))],
  ['s3', () => s3Backend()],
];
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const opts = { threads: 1, packBytes: 256 * 1024 };

async function contentOf(repo: Repository, id: string): Promise<string> {
  const v = await openImageDisk(repo, id, 0);
  try {
    return await checksumDisk(v.disk);
  } finally {
    await v.disk.close();
  }
}

async function tamper(b: Backend, prefix: string, fn: (bytes: Buffer) => Buffer): Promise<void> {
  const [first] = (await listAll(b, prefix)).sort((x, y) => y.size - x.size);
  assert.ok(first, `something under ${prefix}`);
  await b.put(first.key, fn(Buffer.from(await b.get(first.key))));
}

for (const [name, make] of BACKENDS) {
  test(`${name}: write, dedup, read, export, delete, GC, check, reopen`, async () => {
    const backend = await make();
    const repo = await memoryRepo({ blockSize: 4096, fanout: 32 }, backend);
    const a = mixedDisk(2 * 1024 * 1024, 31);
    const b = Buffer.from(a);
    pseudoRandom(40_000, 5).copy(b, 500_000);
    const ia = await writeImage(repo, {
      name: 'a',
      job: 'm',
      disks: [{ name: 'd', disk: await memoryDisk(a) }],
      ...opts,
    });
    const ib = await writeImage(repo, {
      name: 'b',
      job: 'm',
      disks: [{ name: 'd', disk: await memoryDisk(b) }],
      ...opts,
    });
    assert.ok(
      ib.disks[0]!.stats.newChunks <= 11,
      `only changed blocks stored (${ib.disks[0]!.stats.newChunks})`,
    );
    assert.equal(await contentOf(repo, ia.id), sha(a));
    const sink = new MemorySink();
    await exportImage(repo, ib.id, 0, await driverFor('raw').createWriter!(sink, { virtualSize: b.length }));
    assert.equal(sha(sink.contents()), sha(b));
    assert.deepEqual((await listImages(repo)).map((i) => i.id).sort(), [ia.id, ib.id].sort());
    await deleteImage(repo, ia.id);
    const gc = await collectGarbage(repo);
    assert.ok(gc.deletedPacks + gc.repackedPacks > 0 || gc.condemnedPacks === 0);
    assert.deepEqual((await checkRepository(repo, { readData: true })).errors, []);
    const reopened = await Repository.open(backend, TEST_KEY.master);
    assert.equal(await contentOf(reopened, ib.id), sha(b));
    await backend.close();
  });

  test(`${name}: corruption made through the back end is detected with coded errors`, async () => {
    const scenarios: [string, (b: Backend) => Promise<void>, string][] = [
      ['flipped bit in a pack', (b) => tamper(b, 'data/', (x) => ((x[100]! ^= 8), x)), 'FERRY_STORE_CORRUPT'],
      [
        'truncated pack',
        (b) => tamper(b, 'data/', (x) => x.subarray(0, x.length - 5000)),
        'FERRY_STORE_TRUNCATED',
      ],
      [
        'flipped bit in an index',
        (b) => tamper(b, 'index/', (x) => ((x[50]! ^= 1), x)),
        'FERRY_STORE_CORRUPT',
      ],
      [
        'missing index',
        async (b) => {
          for (const o of await listAll(b, 'index/')) await b.delete(o.key);
        },
        'FERRY_STORE_MISSING_CHUNK',
      ],
    ];
    for (const [what, corrupt, code] of scenarios) {
      const backend = await make();
      const repo = await memoryRepo({ blockSize: 4096, fanout: 32 }, backend);
      const data = pseudoRandom(1024 * 1024, 77);
      const img = await writeImage(repo, {
        name: 'c',
        disks: [{ name: 'd', disk: await memoryDisk(data) }],
        ...opts,
      });
      await corrupt(backend);
      const fresh = await Repository.open(backend, TEST_KEY.master);
      await assert.rejects(contentOf(fresh, img.id), (err: { code?: string }) => {
        assert.ok(
          err.code === code || (code === 'FERRY_STORE_TRUNCATED' && err.code === 'FERRY_STORE_CORRUPT'),
          `${name} ${what}: ${err.code}`,
        );
        return true;
      });
      const report = await checkRepository(fresh, { readData: true });
      assert.ok(report.errors.length > 0, `${name} ${what}: check reports it`);
      await backend.close();
    }
  });
}
