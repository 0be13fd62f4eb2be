import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { checksumDisk, type Disk } from '../../src/disk/index.js';
import {
  applyRetention,
  checkRepository,
  collectGarbage,
  deleteImage,
  listAll,
  listImages,
  MemoryBackend,
  openImageDisk,
  Repository,
  writeImage,
  type GcOptions,
} from '../../src/store/index.js';
import { pseudoRandom } from '../helpers/qemu.js';
import { memoryDisk, memoryRepo, mixedDisk, TEST_KEY } from './helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const opts = { threads: 0, packBytes: 64 * 1024, checkpointMs: 0 };

async function assertReadable(repo: Repository, id: string, expected: Buffer) {
  const v = await openImageDisk(repo, id, 0);
  try {
    assert.equal(await checksumDisk(v.disk), sha(expected), `image ${id} content`);
  } finally {
    await v.disk.close();
  }
}

async function assertClean(repo: Repository) {
  const r = await checkRepository(repo, { readData: true });
  assert.deepEqual(r.errors, [], 'check --read-data finds no error');
}

async function packBytes(backend: MemoryBackend): Promise<number> {
  return (await listAll(backend, 'data/')).reduce((s, o) => s + o.size, 0);
}

test('GC reclaims what deleted images alone used; the others stay intact', async () => {
  const backend = new MemoryBackend();
  const repo = await memoryRepo(undefined, backend);
  const a = mixedDisk(1 << 20, 1);
  const b = Buffer.concat([a.subarray(0, 512 * 1024), pseudoRandom(512 * 1024, 99)]);
  const ia = await writeImage(repo, {
    name: 'a',
    job: 'j',
    disks: [{ name: 'd', disk: await memoryDisk(a) }],
    ...opts,
  });
  const ib = await writeImage(repo, {
    name: 'b',
    job: 'j',
    disks: [{ name: 'd', disk: await memoryDisk(b) }],
    ...opts,
  });
  const before = await packBytes(backend);
  const none = await collectGarbage(repo);
  assert.equal(none.deletedPacks, 0);
  assert.equal(none.condemnedPacks, 0);

  await deleteImage(repo, ia.id);
  const r = await collectGarbage(repo);
  assert.ok(r.deletedPacks > 0, 'dead packs deleted');
  assert.ok((await packBytes(backend)) < before, 'repository shrank');
  assert.equal(r.waiting, 0);
  await assertReadable(repo, ib.id, b);
  await assertClean(repo);
  assert.deepEqual(await listAll(backend, 'gc/'), []);

  // Retention: keep the most recent image of the job.
  const ic = await writeImage(repo, {
    name: 'c',
    job: 'j',
    disks: [{ name: 'd', disk: await memoryDisk(a) }],
    ...opts,
  });
  assert.deepEqual(await applyRetention(repo, 'j', 1), [ib.id]);
  assert.deepEqual(
    (await listImages(repo)).map((i) => i.id),
    [ic.id],
  );
  await collectGarbage(repo);
  await assertReadable(repo, ic.id, a);
  await assertClean(repo);
});

test('GC killed at any step leaves a consistent repository; the next GC finishes the job', async () => {
  const steps = [
    'repacked',
    'index-written',
    'record-written',
    'old-index-deleted',
    'activated',
    'resurrected',
    'pack-deleted',
    'completed',
  ];
  for (const crashAt of steps) {
    for (const nth of [1, 2]) {
      const backend = new MemoryBackend();
      const repo = await memoryRepo(undefined, backend);
      const keep = mixedDisk(600 * 1024, 5);
      const gone = pseudoRandom(600 * 1024, 6);
      const mixed = Buffer.concat([keep.subarray(0, 300 * 1024), gone.subarray(0, 300 * 1024)]);
      const i1 = await writeImage(repo, {
        name: 'k',
        disks: [{ name: 'd', disk: await memoryDisk(keep) }],
        ...opts,
      });
      const i2 = await writeImage(repo, {
        name: 'g',
        disks: [{ name: 'd', disk: await memoryDisk(gone) }],
        ...opts,
      });
      const i3 = await writeImage(repo, {
        name: 'm',
        disks: [{ name: 'd', disk: await memoryDisk(mixed) }],
        ...opts,
      });
      await deleteImage(repo, i2.id);
      await deleteImage(repo, i3.id);
      let seen = 0;
      const crash: GcOptions = {
        repackThreshold: 0.1,
        step: async (name) => {
          if (name === crashAt && ++seen === nth) throw new Error(`crash at ${name}`);
        },
      };
      await collectGarbage(repo, crash).then(
        () => assert.ok(crashAt === 'resurrected' || nth === 2, `no crash at ${crashAt} #${nth}`),
        (err: Error) => assert.match(err.message, /crash at/),
      );
      // Whatever happened, the listed image is whole and check finds no error.
      await assertReadable(repo, i1.id, keep);
      await assertClean(repo);
      await collectGarbage(repo);
      await collectGarbage(repo);
      await assertReadable(repo, i1.id, keep);
      await assertClean(repo);
      assert.deepEqual(await listAll(backend, 'gc/'), [], `no GC record left (${crashAt} #${nth})`);
      const warn = await checkRepository(repo);
      assert.deepEqual(warn.warnings, [], `no orphan left (${crashAt} #${nth})`);
    }
  }
});

/** A disk whose reads wait at `offset` until `gate` resolves (a writer paused mid-way). */
function pausedDisk(inner: Disk, offset: number, gate: Promise<void>, reached: () => void): Disk {
  return {
    virtualSize: inner.virtualSize,
    layers: inner.layers,
    names: inner.names,
    map: (o, l) => inner.map(o, l),
    read: async (o, l) => {
      if (o + l > offset) {
        reached();
        await gate;
      }
      return inner.read(o, l);
    },
    close: () => inner.close(),
  };
}

test('GC while a writer runs: chunks the writer deduplicated against are never lost', async () => {
  const backend = new MemoryBackend();
  const repo = await memoryRepo(undefined, backend);
  const old = pseudoRandom(512 * 1024, 11);
  const i1 = await writeImage(repo, {
    name: 'old',
    disks: [{ name: 'd', disk: await memoryDisk(old) }],
    ...opts,
  });
  // The new disk shares its second half with the old image, which is then deleted.
  const next = Buffer.concat([pseudoRandom(256 * 1024, 12), old.subarray(256 * 1024)]);
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let reachedGate!: () => void;
  const reached = new Promise<void>((r) => (reachedGate = r));
  const writer = writeImage(repo, {
    name: 'new',
    disks: [{ name: 'd', disk: pausedDisk(await memoryDisk(next), 200 * 1024, gate, reachedGate) }],
    ...opts,
  });
  await reached; // the writer holds its lock and has loaded the index (with the old chunks)
  await deleteImage(repo, i1.id);
  const g1 = await collectGarbage(repo);
  assert.ok(g1.condemnedPacks > 0);
  assert.equal(g1.waiting, 1, 'condemned, but deletion waits for the live writer');
  assert.equal(g1.deletedPacks, 0);
  open();
  const img = await writer;
  assert.ok(img.disks[0]!.stats.newChunks < 100, 'the writer deduplicated against condemned chunks');
  const g2 = await collectGarbage(repo);
  assert.ok(g2.resurrectedChunks > 0, 'chunks the new image needs were resurrected');
  await assertReadable(repo, img.id, next);
  await assertClean(repo);
  // Once nothing references them any more, they go.
  await deleteImage(repo, img.id);
  await collectGarbage(repo);
  assert.equal(await packBytes(backend), 0);
});

test('dry run changes nothing; a second GC at once is refused with FERRY_STORE_LOCKED', async () => {
  const backend = new MemoryBackend();
  const repo = await memoryRepo(undefined, backend);
  const i = await writeImage(repo, {
    name: 'x',
    disks: [{ name: 'd', disk: await memoryDisk(mixedDisk(300_000)) }],
    ...opts,
  });
  await deleteImage(repo, i.id);
  const snapshot = [...backend.objects.keys()].filter((k) => !k.startsWith('locks/')).sort();
  const r = await collectGarbage(repo, { dryRun: true });
  assert.ok(r.condemnedPacks > 0);
  assert.deepEqual([...backend.objects.keys()].filter((k) => !k.startsWith('locks/')).sort(), snapshot);
  const other = await Repository.open(backend, TEST_KEY.master);
  const { RepoLock } = await import('../../src/store/index.js');
  const held = await RepoLock.acquire(other, 'gc');
  await assert.rejects(collectGarbage(repo), { code: 'FERRY_STORE_LOCKED' });
  await held.release();
  await collectGarbage(repo);
  assert.equal(await packBytes(backend), 0);
});
