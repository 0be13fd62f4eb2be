import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { checksumDisk, driverFor, MemorySink } from '../../src/disk/index.js';
import {
  checkRepository,
  exportImage,
  getImage,
  listImages,
  MemoryBackend,
  openImageDisk,
  Repository,
  writeImage,
} from '../../src/store/index.js';
import { pseudoRandom } from '../helpers/qemu.js';
import { memoryDisk, memoryRepo, mixedDisk, TEST_KEY } from './helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const threads of [0, 2]) {
  test(`write then read back a mixed disk (threads=${threads}): bytes, map and checksum agree`, async () => {
    const repo = await memoryRepo();
    const data = mixedDisk(3 * 1024 * 1024 + 4096 * 3 + 512);
    const disk = await memoryDisk(data);
    const image = await writeImage(repo, {
      name: 'web-1',
      job: 'nightly',
      disks: [{ name: 'd0', disk }],
      threads,
      packBytes: 256 * 1024,
    });
    assert.match(image.id, /^ami-[0-9a-f]{17}$/);
    const d = image.disks[0]!;
    assert.equal(d.virtualSize, Math.ceil(data.length / 512) * 512);
    assert.ok(d.stats.zeroBlocks > 0 && d.stats.dataBlocks > 0);
    assert.equal(d.stats.dataBlocks + d.stats.zeroBlocks, Math.ceil(d.virtualSize / 4096));

    const view = await openImageDisk(repo, image.id, 0);
    const expected = Buffer.concat([data, Buffer.alloc(d.virtualSize - data.length)]);
    assert.equal(await checksumDisk(view.disk), sha(expected));
    // Random, unaligned reads.
    for (const [o, l] of [
      [0, 1],
      [4095, 2],
      [100_000, 300_000],
      [d.virtualSize - 700, 700],
    ] as const) {
      assert.deepEqual(await view.disk.read(o, l), expected.subarray(o, o + l), `read ${o}+${l}`);
    }
    let zeroBytes = 0;
    for await (const e of view.disk.map()) if (e.kind === 'zero') zeroBytes += e.length;
    let expectedZero = 0;
    for (let o = 0; o < expected.length; o += 4096) {
      const b = expected.subarray(o, o + 4096);
      if (b.every((x) => x === 0)) expectedZero += b.length;
    }
    assert.equal(zeroBytes, expectedZero);
    await view.disk.close();

    const sink = new MemorySink();
    const writer = await driverFor('raw').createWriter!(sink, { virtualSize: d.virtualSize });
    const r = await exportImage(repo, image.id, 0, writer);
    assert.equal(r.checksum, d.checksum);
    assert.equal(sha(sink.contents()), sha(expected));
    assert.deepEqual(
      (await listImages(repo)).map((i) => i.id),
      [image.id],
    );
  });
}

test('a second image of a slightly changed disk stores only the changed blocks', async () => {
  const repo = await memoryRepo();
  const data = mixedDisk(2 * 1024 * 1024, 3);
  const first = await writeImage(repo, {
    name: 'a',
    disks: [{ name: 'd', disk: await memoryDisk(data) }],
    threads: 0,
  });
  const changed = Buffer.from(data);
  for (const off of [4096 * 3, 4096 * 100, 4096 * 400]) pseudoRandom(4096, off).copy(changed, off);
  const second = await writeImage(repo, {
    name: 'b',
    disks: [{ name: 'd', disk: await memoryDisk(changed) }],
    threads: 0,
  });
  assert.equal(second.disks[0]!.stats.newChunks, 3);
  assert.notEqual(first.disks[0]!.checksum, second.disks[0]!.checksum);
  // The same disk again: nothing new at all.
  const third = await writeImage(repo, {
    name: 'c',
    disks: [{ name: 'd', disk: await memoryDisk(changed) }],
    threads: 0,
  });
  assert.equal(third.disks[0]!.stats.newChunks, 0);
  assert.equal(third.disks[0]!.checksum, second.disks[0]!.checksum);
});

test('identical blocks across disks and servers are stored once; zero disks cost nothing', async () => {
  const repo = await memoryRepo();
  const block = pseudoRandom(4096, 42);
  const a = Buffer.concat(Array.from({ length: 64 }, () => block));
  const img = await writeImage(repo, {
    name: 'x',
    disks: [
      { name: 'a', disk: await memoryDisk(a) },
      { name: 'zero', disk: await memoryDisk(Buffer.alloc(8 << 20)) },
    ],
    threads: 0,
  });
  assert.equal(img.disks[0]!.stats.newChunks, 1);
  assert.equal(img.disks[1]!.stats.newChunks, 0);
  assert.equal(img.disks[1]!.stats.storedBytes, 0);
  assert.equal(img.disks[1]!.root, '0'.repeat(64));
  const other = await writeImage(repo, {
    name: 'y',
    disks: [{ name: 'b', disk: await memoryDisk(a) }],
    threads: 0,
  });
  assert.equal(other.disks[0]!.stats.newChunks, 0);
});

test('a repository reopens with its key and images survive; the wrong key is refused', async () => {
  const backend = new MemoryBackend();
  const repo = await memoryRepo(undefined, backend);
  const img = await writeImage(repo, {
    name: 'x',
    disks: [{ name: 'a', disk: await memoryDisk(mixedDisk(300_000)) }],
    threads: 0,
  });
  const again = await Repository.open(backend, TEST_KEY.master);
  assert.deepEqual(await getImage(again, img.id), img);
  const { master } = (await import('../../src/store/index.js')).RawMasterKey.generate();
  await assert.rejects(Repository.open(backend, master), { code: 'FERRY_STORE_WRONG_KEY' });
  await assert.rejects(Repository.open(new MemoryBackend(), master), { code: 'FERRY_STORE_NOT_FOUND' });
  await assert.rejects(Repository.init(backend, master), { code: 'FERRY_STORE_EXISTS' });
});

test('edge sizes: an empty disk, a one-sector disk, a size just past a page boundary', async () => {
  const repo = await memoryRepo();
  const sizes = [0, 512, 16 * 4096 + 512, 16 * 16 * 4096 + 4096];
  const bufs = sizes.map((n, i) => pseudoRandom(n, 100 + i));
  const image = await writeImage(repo, {
    name: 'edges',
    disks: await Promise.all(bufs.map(async (b, i) => ({ name: `d${i}`, disk: await memoryDisk(b) }))),
    threads: 0,
  });
  for (const [i, b] of bufs.entries()) {
    const sink = new MemorySink();
    const writer = await driverFor('raw').createWriter!(sink, { virtualSize: b.length });
    const r = await exportImage(repo, image.id, i, writer);
    assert.equal(r.checksum, image.disks[i]!.checksum);
    assert.equal(sha(sink.contents()), sha(b), `disk ${i} of ${b.length} bytes`);
  }
  assert.equal(image.disks[0]!.depth, 0);
  assert.equal(image.disks[3]!.depth, 3);
});

test('batches with and without new chunks interleave safely (sealed outputs are never shared)', async () => {
  for (const threads of [0, 2]) {
    const repo = await memoryRepo({ blockSize: 4096, fanout: 64 });
    const base = pseudoRandom(24 * 1024 * 1024, 500);
    await writeImage(repo, { name: 'a', disks: [{ name: 'd', disk: await memoryDisk(base) }], threads });
    // Every other 4 MiB batch changes: batches alternate between all-known and all-new.
    const next = Buffer.from(base);
    for (let mb = 0; mb < 24; mb += 8) pseudoRandom(4 * 1024 * 1024, 900 + mb).copy(next, mb * 1024 * 1024);
    const img = await writeImage(repo, {
      name: 'b',
      disks: [{ name: 'd', disk: await memoryDisk(next) }],
      threads,
      packBytes: 1024 * 1024,
    });
    const view = await openImageDisk(repo, img.id, 0);
    assert.equal(await checksumDisk(view.disk), sha(next), `threads=${threads}`);
    await view.disk.close();
    assert.deepEqual((await checkRepository(repo, { readData: true })).errors, [], `threads=${threads}`);
  }
});

test('worker threads kept between writes take the next write’s keys (two repositories, alternating)', async () => {
  const repos = [await memoryRepo(), await memoryRepo()];
  const data = [mixedDisk(1024 * 1024, 3), mixedDisk(1024 * 1024, 5)];
  for (const round of [0, 1]) {
    for (const [i, repo] of repos.entries()) {
      const content = data[(i + round) % 2]!;
      const image = await writeImage(repo, {
        name: `r${round}`,
        disks: [{ name: 'd', disk: await memoryDisk(content) }],
        threads: 2,
      });
      const view = await openImageDisk(repo, image.id, 0);
      assert.equal(await checksumDisk(view.disk), sha(content));
      await view.disk.close();
    }
  }
  for (const repo of repos) assert.deepEqual((await checkRepository(repo, { readData: true })).errors, []);
});
