/**
 * Incremental images: a disk whose top layer holds only what changed, stacked over the
 * previous image, is stored by reusing the previous image's blocks without reading them;
 * the result is indistinguishable from a full write of the same content.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  checksumDisk,
  LayeredDisk,
  pushMerged,
  type DiskLayer,
  type LayerExtent,
} from '../../src/disk/index.js';
import {
  checkRepository,
  collectGarbage,
  deleteImage,
  openImageDisk,
  writeImage,
} from '../../src/store/index.js';
import { pseudoRandom } from '../helpers/qemu.js';
import { memoryDisk, memoryRepo, mixedDisk } from './helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A layer over `content` exposing only `changed` ranges; the rest asks the layer below. */
function changedLayer(content: Buffer, changed: readonly [number, number][]): DiskLayer & { reads: number } {
  const layer = {
    reads: 0,
    info: {
      format: 'raw' as const,
      subformat: 'changes',
      virtualSize: content.length,
      clusterSize: 512,
      fileSize: 0,
      files: [],
      warnings: [],
      details: {},
    },
    async map(offset: number, length: number): Promise<LayerExtent[]> {
      const out: LayerExtent[] = [];
      let pos = offset;
      const end = offset + length;
      for (const [s, n] of changed) {
        const a = Math.max(s, pos);
        const b = Math.min(s + n, end);
        if (b <= a) continue;
        if (a > pos) pushMerged(out, { offset: pos, length: a - pos, kind: 'unallocated' });
        pushMerged(out, { offset: a, length: b - a, kind: 'data' });
        pos = b;
      }
      if (pos < end) pushMerged(out, { offset: pos, length: end - pos, kind: 'unallocated' });
      return out;
    },
    async read(offset: number, length: number): Promise<Buffer> {
      layer.reads += length;
      return Buffer.from(content.subarray(offset, offset + length));
    },
    async close(): Promise<void> {},
  };
  return layer;
}

test('an incremental image reuses unchanged blocks unread and equals a full write', async () => {
  const repo = await memoryRepo();
  const size = 4 * 1024 * 1024 + 3 * 4096 + 512; // a short last block, pages of 16 blocks
  const before = mixedDisk(size, 3);
  const first = await writeImage(repo, {
    name: 'vm',
    disks: [{ name: 'd0', disk: await memoryDisk(before) }],
  });
  assert.ok(first.disks[0]!.digests, 'a full write keeps the digest tree');

  // Changes: a block inside data, a range across a page boundary, a write of zeros over
  // data, a partial block (the rest of it comes from the base), and the short last block.
  const after = Buffer.from(before);
  const changed: [number, number][] = [
    [8192, 4096],
    [60 * 4096, 6 * 4096],
    [100 * 4096, 2 * 4096],
    [300 * 4096 + 100, 50],
    [size - 300, 300],
  ];
  pseudoRandom(4096, 1).copy(after, 8192);
  pseudoRandom(6 * 4096, 2).copy(after, 60 * 4096);
  after.fill(0, 100 * 4096, 102 * 4096);
  after.fill(7, 300 * 4096 + 100, 300 * 4096 + 150);
  after.fill(9, size - 300);

  const base = await openImageDisk(repo, first.id, 0);
  let baseReads = 0;
  const counted: DiskLayer = {
    info: base.layer.info,
    map: (o, l) => base.layer.map(o, l),
    read: (o, l) => {
      baseReads += l;
      return base.layer.read(o, l);
    },
    close: () => base.layer.close(),
  };
  const top = changedLayer(after, changed);
  const disk = new LayeredDisk([top, counted], ['changes', first.id]);
  const second = await writeImage(repo, {
    name: 'vm',
    disks: [{ name: 'd0', disk, base: { image: first.id, disk: 0, depth: 1 } }],
  });
  await disk.close();
  // Only the blocks holding changes were read (partial blocks whole, through the chain).
  assert.ok(top.reads <= 12 * 4096, `read ${top.reads} bytes from the changed layer`);
  // From the base, only the parts of the two partly changed blocks.
  assert.ok(baseReads <= 2 * 4096, `read ${baseReads} bytes of the base image`);

  // Same content, same checksum and references as a full write of the new content.
  const full = await writeImage(repo, { name: 'vm', disks: [{ name: 'd0', disk: await memoryDisk(after) }] });
  const d2 = second.disks[0]!;
  const df = full.disks[0]!;
  assert.equal(d2.checksum, df.checksum);
  assert.equal(d2.root, df.root, 'identical block tree');
  assert.equal(d2.digests, df.digests, 'identical digest tree');
  assert.equal(full.disks[0]!.stats.newChunks, 0, 'the incremental write stored every new block');
  const view = await openImageDisk(repo, second.id, 0, { verify: true });
  assert.equal(await checksumDisk(view.disk), sha(after));
  await view.disk.close();

  // The base can go: the incremental image keeps what it reuses; GC and check agree.
  await deleteImage(repo, first.id);
  await collectGarbage(repo);
  const again = await openImageDisk(repo, second.id, 0);
  assert.equal(await checksumDisk(again.disk), sha(after));
  await again.disk.close();
  const report = await checkRepository(repo, { readData: true });
  assert.deepEqual(report.errors, []);
});

test('a base named at the wrong depth is never reused: the write reads through', async () => {
  const repo = await memoryRepo();
  const before = mixedDisk(1024 * 1024, 5);
  const first = await writeImage(repo, {
    name: 'vm',
    disks: [{ name: 'd0', disk: await memoryDisk(before) }],
  });
  const after = Buffer.from(before);
  after.fill(1, 0, 4096);
  const base = await openImageDisk(repo, first.id, 0);
  const disk = new LayeredDisk([changedLayer(after, [[0, 4096]]), base.layer], ['changes', first.id]);
  const image = await writeImage(repo, {
    name: 'vm',
    // No layer sits at depth 5: nothing comes from the base there, so nothing is reused.
    disks: [{ name: 'd0', disk, base: { image: first.id, disk: 0, depth: 5 } }],
  });
  await disk.close();
  const view = await openImageDisk(repo, image.id, 0);
  assert.equal(await checksumDisk(view.disk), sha(after));
  await view.disk.close();
});
