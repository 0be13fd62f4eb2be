/**
 * A write that fails at any object write (the in-memory analog of kill -9: every put is a
 * possible last act) leaves a consistent repository, lists nothing half-written, and
 * resumes to an image identical to its source.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { checksumDisk } from '../../src/disk/index.js';
import {
  checkRepository,
  listImages,
  listIncomplete,
  MemoryBackend,
  openImageDisk,
  writeImage,
  type Repository,
} from '../../src/store/index.js';
import { pseudoRandom } from '../helpers/qemu.js';
import { memoryDisk, memoryRepo, mixedDisk } from './helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const opts = { threads: 0, packBytes: 48 * 1024, checkpointMs: 0 };

async function content(repo: Repository, id: string, disk: number): Promise<string> {
  const v = await openImageDisk(repo, id, disk);
  try {
    return await checksumDisk(v.disk);
  } finally {
    await v.disk.close();
  }
}

test('a write failing at every n-th object write resumes to the same image', async () => {
  const base = mixedDisk(1024 * 1024, 1);
  const other = mixedDisk(512 * 1024, 2);
  const next = Buffer.from(base);
  for (let i = 0; i < 12; i++) pseudoRandom(8192, i).copy(next, i * 81920);
  // How many puts does a full write take?
  const probe = new MemoryBackend();
  const probeRepo = await memoryRepo(undefined, probe);
  await writeImage(probeRepo, {
    name: 'base',
    disks: [{ name: 'd', disk: await memoryDisk(base) }],
    ...opts,
  });
  const before = probe.counts.put;
  await writeImage(probeRepo, {
    name: 'next',
    disks: [
      { name: 'd', disk: await memoryDisk(next) },
      { name: 'e', disk: await memoryDisk(other) },
    ],
    ...opts,
  });
  const total = probe.counts.put - before;
  assert.ok(total > 10, `a write makes ${total} puts`);

  for (let k = 1; k <= total; k += Math.max(1, Math.floor(total / 14))) {
    const backend = new MemoryBackend();
    const repo = await memoryRepo(undefined, backend);
    const first = await writeImage(repo, {
      name: 'base',
      disks: [{ name: 'd', disk: await memoryDisk(base) }],
      ...opts,
    });
    let n = 0;
    backend.faults.fail = (op, key) => op === 'put' && !key.startsWith('locks/') && ++n === k;
    const disks = async () => [
      { name: 'd', disk: await memoryDisk(next) },
      { name: 'e', disk: await memoryDisk(other) },
    ];
    const failed = await writeImage(repo, { name: 'next', disks: await disks(), ...opts }).then(
      () => false,
      (err: { code?: string }) => {
        assert.equal(err.code, 'FERRY_IO_ERROR', `put #${k}`);
        return true;
      },
    );
    backend.faults = {};
    assert.ok(failed || k > total - 3, `put #${k} of ${total} should have failed the write`);
    const check = await checkRepository(repo);
    assert.deepEqual(check.errors, [], `consistent after a failure at put #${k}`);
    const listed = (await listImages(repo)).map((i) => i.id);
    const incomplete = (await listIncomplete(repo)).filter((w) => !w.committed && w.meta);
    if (failed && incomplete.length === 0 && listed.length === 1) continue; // failed before its meta
    let id = listed.find((x) => x !== first.id);
    if (!id) {
      assert.equal(incomplete.length, 1, `put #${k}: one resumable write`);
      assert.deepEqual(listed, [first.id], 'nothing half-written is listed');
      const done = await writeImage(repo, {
        name: 'next',
        disks: await disks(),
        resume: incomplete[0]!.id,
        ...opts,
      });
      id = done.id;
      assert.equal(id, incomplete[0]!.id);
    }
    assert.equal(await content(repo, id, 0), sha(next), `put #${k}: disk 0 after resume`);
    assert.equal(await content(repo, id, 1), sha(other), `put #${k}: disk 1 after resume`);
    assert.deepEqual((await checkRepository(repo, { readData: true })).errors, []);
  }
});

test('resume refuses different disks and unknown ids', async () => {
  const backend = new MemoryBackend();
  const repo = await memoryRepo(undefined, backend);
  let n = 0;
  backend.faults.fail = (op, key) => op === 'put' && key.startsWith('data/') && ++n === 3;
  const data = mixedDisk(1024 * 1024, 4);
  await assert.rejects(
    writeImage(repo, { name: 'x', disks: [{ name: 'd', disk: await memoryDisk(data) }], ...opts }),
  );
  backend.faults = {};
  const [w] = await listIncomplete(repo);
  assert.ok(w?.meta);
  await assert.rejects(
    writeImage(repo, {
      name: 'x',
      disks: [{ name: 'd', disk: await memoryDisk(data.subarray(0, 4096)) }],
      resume: w.id,
      ...opts,
    }),
    { code: 'FERRY_STORE_RESUME_MISMATCH' },
  );
  await assert.rejects(
    writeImage(repo, {
      name: 'x',
      disks: [{ name: 'd', disk: await memoryDisk(data) }],
      resume: 'ami-00000000000000000',
      ...opts,
    }),
    { code: 'FERRY_STORE_IMAGE_NOT_FOUND' },
  );
  const done = await writeImage(repo, {
    name: 'x',
    disks: [{ name: 'd', disk: await memoryDisk(data) }],
    resume: w.id,
    ...opts,
  });
  assert.equal(done.id, w.id);
  assert.ok(done.disks[0]!.stats.dataBlocks > 0);
});
