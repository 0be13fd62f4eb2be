import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FerryError } from '../../../errors/index.js';
import { oracleChecksum, qemuImg, qemuIo, tempDir } from '../../../../test/helpers/qemu.js';
import { startQemuNbd } from '../../../../test/helpers/kvm.js';
import {
  CONTEXT_ALLOCATION_DEPTH,
  CONTEXT_BASE_ALLOCATION,
  NBD_FLAG_READ_ONLY,
  NbdByteSource,
  NbdClient,
  allocationDepth,
  allocationKind,
  combineDirtyAndAllocation,
  dirtyBitmapContext,
  queryExtents,
  toAllocationExtents,
  toDirtyExtents,
} from './index.js';
import { rejectsWith } from '../../../../test/helpers/errors.js';

const MiB = 1024 * 1024;

/** qemu-img map as the oracle: ranges tagged the way extents.ts tags base:allocation. */
async function oracleAllocation(image: string): Promise<{ offset: number; length: number; kind: string }[]> {
  const map = JSON.parse(await qemuImg('map', '--output=json', '-f', 'qcow2', image)) as {
    start: number;
    length: number;
    data: boolean;
    zero: boolean;
  }[];
  const out: { offset: number; length: number; kind: string }[] = [];
  for (const m of map) {
    // NBD: HOLE = !data, ZERO = zero (QEMU nbd/server.c blockstatus_to_extents).
    const kind = allocationKind((m.data ? 0 : 1) | (m.zero ? 2 : 0));
    const last = out[out.length - 1];
    if (last && last.kind === kind && last.offset + last.length === m.start) last.length += m.length;
    else out.push({ offset: m.start, length: m.length, kind });
  }
  return out;
}

test('qemu-nbd: handshake, full and pipelined reads, allocation, dirty bitmap and depth contexts agree with qemu-img', async () => {
  const dir = await tempDir('ferry-nbd-');
  const image = join(dir, 'disk.qcow2');
  await qemuImg('create', '-f', 'qcow2', image, '64M');
  // Written before the bitmap exists: allocated but clean.
  await qemuIo(image, 'qcow2', 'write -P 0x11 0 256k', 'write -P 0x22 5M 1M', 'write -z 9M 512k');
  await qemuImg('bitmap', '--add', image, 'b0');
  // Written after: dirty. One write straddles two 64 KiB bitmap granules at 20M+32k.
  await qemuIo(image, 'qcow2', 'write -P 0x55 1M 64k', 'write -P 0x66 20M 96k', 'write -P 0x77 63M 1M');
  const rawPath = join(dir, 'disk.raw');
  await qemuImg('convert', '-f', 'qcow2', '-O', 'raw', image, rawPath);
  const raw = await readFile(rawPath);

  const nbd = await startQemuNbd(dir, image, 'qcow2', [
    '--read-only',
    '-A',
    '-B',
    'b0',
    '--export-name=disk',
  ]);
  const dirty = dirtyBitmapContext('b0');
  try {
    const client = await NbdClient.connect(
      { path: nbd.socket },
      {
        exportName: 'disk',
        metaContexts: [CONTEXT_BASE_ALLOCATION, dirty, CONTEXT_ALLOCATION_DEPTH],
        maxInFlight: 4,
      },
    );
    try {
      assert.equal(client.size, 64 * MiB);
      assert.ok(client.info.flags & NBD_FLAG_READ_ONLY);
      assert.ok(client.info.structuredReplies);
      assert.deepEqual(
        [...client.info.contexts.keys()].sort(),
        [CONTEXT_ALLOCATION_DEPTH, CONTEXT_BASE_ALLOCATION, dirty].sort(),
      );

      // Full read (two 32 MiB requests at most) against the oracle's checksum.
      const whole = Buffer.concat([await client.read(0, 32 * MiB), await client.read(32 * MiB, 32 * MiB)]);
      assert.equal(
        createHash('sha256').update(whole).digest('hex'),
        await oracleChecksum(image, 'qcow2', dir),
      );

      // Many concurrent unaligned reads through the 4-slot pipeline.
      let seed = 7;
      const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
      const ranges = Array.from({ length: 64 }, () => {
        const off = rnd(64 * MiB - 1);
        return [off, Math.min(1 + rnd(2 * MiB), 64 * MiB - off)] as const;
      });
      const got = await Promise.all(ranges.map(([o, l]) => client.read(o, l)));
      ranges.forEach(([o, l], i) => assert.ok(got[i]?.equals(raw.subarray(o, o + l)), `read ${o}+${l}`));

      // base:allocation, merged, against qemu-img map.
      const alloc = await queryExtents(client, CONTEXT_BASE_ALLOCATION, 0, client.size);
      assert.deepEqual(
        toAllocationExtents(alloc).map((e) => ({ offset: e.offset, length: e.length, kind: e.kind })),
        await oracleAllocation(image),
      );

      // The dirty bitmap: exactly the granules written after it was added.
      const dirtyList = toDirtyExtents(await queryExtents(client, dirty, 0, client.size));
      assert.deepEqual(
        dirtyList.filter((e) => e.kind === 'data').map((e) => [e.offset, e.length]),
        [
          [1 * MiB, 64 * 1024],
          [20 * MiB, 128 * 1024],
          [63 * MiB, 1 * MiB],
        ],
      );
      // A sub-range query starts and ends exactly at the bounds asked for.
      const sub = await queryExtents(client, dirty, 20 * MiB + 4096, 100_000);
      assert.deepEqual(
        sub.map((e) => [e.offset, e.length, e.flags]),
        [[20 * MiB + 4096, 100_000, 1]],
      );

      // Combined: dirty ranges tagged by allocation, the rest unchanged.
      const changes = combineDirtyAndAllocation(await queryExtents(client, dirty, 0, client.size), alloc);
      assert.equal(
        changes.reduce((s, e) => s + e.length, 0),
        client.size,
      );
      assert.deepEqual(
        changes.filter((e) => e.kind !== 'unchanged').map((e) => [e.offset, e.length, e.kind]),
        [
          [1 * MiB, 64 * 1024, 'data'],
          [20 * MiB, 128 * 1024, 'data'],
          [63 * MiB, 1 * MiB, 'data'],
        ],
      );

      // qemu:allocation-depth: 1 where the qcow2 holds clusters (including the zero write), 0 elsewhere.
      const depth = await queryExtents(client, CONTEXT_ALLOCATION_DEPTH, 0, client.size);
      const at = (off: number) =>
        allocationDepth(depth.find((e) => e.offset <= off && off < e.offset + e.length)!.flags);
      assert.equal(at(0), 1);
      assert.equal(at(5 * MiB + 10), 1);
      assert.equal(at(9 * MiB), 1);
      assert.equal(at(30 * MiB), 0);

      // As a ByteSource: strict reads, unaligned, past the end refused.
      const src = new NbdByteSource(client, { owned: false });
      assert.deepEqual(await src.read(1 * MiB - 1, 3), Buffer.from([0, 0x55, 0x55]));
      await rejectsWith(src.read(64 * MiB - 1, 2), 'FERRY_IMAGE_TRUNCATED');
      await rejectsWith(client.blockStatus(64 * MiB, 1), 'FERRY_INVALID_ARGUMENT');
    } finally {
      await client.close();
    }
    assert.equal(client.closed, true);
    await rejectsWith(client.read(0, 1), 'FERRY_NBD_DISCONNECTED');

    // Handshake errors from the real server.
    await rejectsWith(
      NbdClient.connect({ path: nbd.socket }, { exportName: 'nope' }),
      'FERRY_NBD_EXPORT_NOT_FOUND',
    );
    const e = await rejectsWith(
      NbdClient.connect(
        { path: nbd.socket },
        { exportName: 'disk', metaContexts: [dirtyBitmapContext('missing')] },
      ),
      'FERRY_NBD_UNSUPPORTED',
    );
    assert.equal(e.details.contexts, 'qemu:dirty-bitmap:missing');
  } finally {
    await nbd.stop();
  }
});

test('qemu-nbd killed with reads in flight: FERRY_NBD_DISCONNECTED (retryable) for them and every later request', async () => {
  const dir = await tempDir('ferry-nbd-');
  const image = join(dir, 'big.qcow2');
  await qemuImg('create', '-f', 'qcow2', image, '256M');
  await qemuIo(image, 'qcow2', 'write -P 0x42 0 128M');
  const nbd = await startQemuNbd(dir, image, 'qcow2', ['--read-only']);
  try {
    const client = await NbdClient.connect({ path: nbd.socket }, { exportName: '' });
    const reads = [0, 1, 2, 3].map((i) =>
      client.read(i * 32 * MiB, 32 * MiB).then(
        () => 'ok',
        (err: unknown) => err,
      ),
    );
    nbd.proc.kill('SIGKILL');
    const results = await Promise.all(reads);
    for (const r of results) if (r !== 'ok') assert.equal((r as FerryError).code, 'FERRY_NBD_DISCONNECTED');
    const e = await rejectsWith(client.read(0, 4096), 'FERRY_NBD_DISCONNECTED');
    assert.equal(e.retryable, true);
    await client.close();
  } finally {
    await nbd.stop();
  }
});
