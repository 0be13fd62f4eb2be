import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { type Disk } from '../../disk/index.js';
import { qemuImg, qemuIo } from '../../../test/helpers/qemu.js';
import { startVm, type Proc } from '../../../test/helpers/kvm.js';
import {
  baseLayer,
  extents,
  leftovers,
  qmp,
  readAll,
  rejectsWith,
  setup,
  write,
} from '../../../test/helpers/kvm-connector.js';
import type { Connector } from '../types.js';
import { createKvmConnector } from './connector.js';
import { QmpClient, queryNamedBlockNodes } from './qmp/index.js';

const MiB = 1024 * 1024;
const KiB = 1024;
const SIZE = 64 * MiB;
const UUID_A = '3c9a1f0e-5b7d-4e2a-8c61-9f0d2b4a7e13';

test('KVM connector: inventory, full and incremental snapshots of a two-disk VM, rollback keeps changes, release and sweep leave nothing', async () => {
  const { root, qmpDir, stateDir } = await setup();
  const a0 = join(root, 'a0.qcow2');
  const a1 = join(root, 'a1.qcow2');
  const b0 = join(root, 'b0.raw');
  await qemuImg('create', '-f', 'qcow2', a0, '64M');
  await qemuImg('create', '-f', 'qcow2', a1, '64M');
  await qemuImg('create', '-f', 'raw', b0, '64M');
  const m0 = Buffer.alloc(SIZE);
  const m1 = Buffer.alloc(SIZE);
  const mb = Buffer.alloc(SIZE);
  await qemuIo(a0, 'qcow2', 'write -P 0x11 0 256k', 'write -P 0x12 32M 64k', 'write -P 0x13 8M 1M');
  m0.fill(0x11, 0, 256 * KiB)
    .fill(0x12, 32 * MiB, 32 * MiB + 64 * KiB)
    .fill(0x13, 8 * MiB, 9 * MiB);
  await qemuIo(a1, 'qcow2', 'write -P 0x22 1M 1M');
  m1.fill(0x22, 1 * MiB, 2 * MiB);
  await qemuIo(b0, 'raw', 'write -P 0x33 0 64k');
  mb.fill(0x33, 0, 64 * KiB);
  // A socket nobody listens on (a VM that died): skipped with a warning, never a crash.
  spawnSync('python3', [
    '-c',
    `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(join(qmpDir, 'dead.qmp'))})`,
  ]);

  const procs: Proc[] = [];
  let disk: Disk | undefined;
  try {
    const alpha = await startVm(
      qmpDir,
      'alpha',
      [
        { file: a0, format: 'qcow2', nodeName: 'disk0' },
        { file: a1, format: 'qcow2' }, // no node-name: QEMU's "#blockNNN"
      ],
      { uuid: UUID_A, cdrom: true, mac: '52:54:00:12:34:56' },
    );
    procs.push(alpha);
    const beta = await startVm(qmpDir, 'beta', [{ file: b0, format: 'raw' }]);
    procs.push(beta);

    const warned: string[] = [];
    const c: Connector = await createKvmConnector({
      connectorId: 'c-kvm',
      version: '0.1.0',
      qmpDir,
      stateDir,
      log: { warn: (o, msg) => warned.push(`${msg} ${JSON.stringify(o)}`) },
    });
    assert.equal(c.descriptor.kind, 'local');
    assert.match(c.descriptor.vmManagerId, /^kvm-[0-9a-f]{12}$/);
    assert.match(c.descriptor.vmManagerName, /^kvm:\//);
    assert.equal(c.descriptor.vmManagerType, undefined);

    // ── Inventory ──────────────────────────────────────────────────────────────────
    // An external client holding the monitor for a moment only delays the inventory.
    const holder = await QmpClient.connect({ path: alpha.qmp });
    const release = setTimeout(() => void holder.close(), 1000);
    const inv = await c.inventory.collect();
    clearTimeout(release);
    await holder.close();
    assert.deepEqual(
      inv.map((s) => [s.vmId, s.vmName, s.vmPath]),
      [
        [UUID_A, 'alpha', alpha.qmp],
        ['beta', 'beta', beta.qmp],
      ],
    );
    assert.ok(
      warned.some((w) => w.includes('dead.qmp')),
      warned.join('\n'),
    );
    const fa = inv[0]?.facts;
    assert.deepEqual(
      fa?.disks.map((d) => [d.name, d.format, d.subformat, d.virtualSize, d.files.length]),
      [
        ['drive0', 'qcow2', '', SIZE, 0],
        ['drive1', 'qcow2', '', SIZE, 0],
      ],
    );
    assert.ok((fa?.disks[0]?.fileSize ?? 0) > 0);
    assert.equal(fa?.cpus, 1);
    assert.equal(fa?.memoryMiB, 64);
    assert.equal(fa?.firmware, 'bios');
    assert.deepEqual(fa?.nics, [{ macAddress: '52:54:00:12:34:56' }]);
    const fb = inv[1]?.facts;
    assert.deepEqual(
      fb?.disks.map((d) => [d.name, d.format, d.virtualSize]),
      [['drive0', 'raw', SIZE]],
    );
    assert.ok(
      fb?.warnings.some((w) => /drive0 \(raw\) cannot keep change tracking/.test(w)),
      fb?.warnings.join(),
    );

    await rejectsWith(c.source.openDisk(UUID_A, 0), 'FERRY_OPERATION_NOT_PERMITTED');
    await rejectsWith(c.source.snapshot!('no-such-vm', { runId: 'r' }), 'FERRY_NOT_FOUND');

    // ── Full snapshot: one instant for both disks ─────────────────────────────────
    const s1 = await c.source.snapshot!(UUID_A, { runId: 'run-1' });
    assert.equal(s1.id, 'ferry-run-1');
    assert.equal(s1.checkpoint, 'ferry-run-1');
    assert.deepEqual(
      s1.disks.map((d) => [d.index, d.virtualSize, d.mode, d.rescan]),
      [
        [0, SIZE, 'full', undefined],
        [1, SIZE, 'full', undefined],
      ],
    );
    assert.ok(s1.warnings.some((w) => w.startsWith('crash-consistent')));
    const at1 = [Buffer.from(m0), Buffer.from(m1)];
    // The guest writes after the snapshot: the snapshot must not show them.
    await write(alpha.qmp, 'drive0', 0x99, 0, 128 * KiB, m0);
    await write(alpha.qmp, 'drive1', 0x98, 1 * MiB, 64 * KiB, m1);
    // Same run again: the same snapshot (reattached, not retaken).
    const again = await c.source.snapshot!(UUID_A, { runId: 'run-1' });
    assert.deepEqual(again, s1);
    for (const i of [0, 1]) {
      disk = await c.source.openDisk(UUID_A, i, s1);
      assert.equal(disk.virtualSize, SIZE);
      assert.ok((await readAll(disk)).equals(at1[i] as Buffer), `disk ${i} at the snapshot`);
      const ext = await extents(disk);
      assert.ok(ext.every((e) => e.depth === 0 || e.kind === 'unallocated'));
      await disk.close();
      disk = undefined;
    }
    const busy = await leftovers(alpha.qmp);
    assert.equal(busy.exports.length, 2);
    assert.equal(busy.jobs.length, 2);
    assert.equal(busy.nodes.length, 2);
    assert.equal((await readdir(join(stateDir, UUID_A))).filter((f) => f.endsWith('.qcow2')).length, 2);

    await c.source.release!(UUID_A, s1.id, true);
    let left = await leftovers(alpha.qmp);
    assert.deepEqual(left.exports, []);
    assert.deepEqual(left.jobs, []);
    assert.deepEqual(left.nodes, []);
    assert.equal(left.bitmaps.length, 2);
    assert.ok(left.bitmaps.every((b) => b.endsWith(':ferry-run-1')));
    assert.deepEqual(await readdir(join(stateDir, UUID_A)), []);
    // Releasing again is a no-op (the checkpoint bitmap stays).
    await c.source.release!(UUID_A, s1.id, false);
    assert.deepEqual((await leftovers(alpha.qmp)).bitmaps, left.bitmaps);

    // ── Incremental: only what changed since run-1, over the previous image ──────
    const prev = [Buffer.from(m0), Buffer.from(m1)];
    await write(alpha.qmp, 'drive0', 0x44, 4 * MiB, 1 * MiB, m0);
    // Zeroed since: must read as zeros, not fall through to the previous image's bytes.
    await write(alpha.qmp, 'drive0', 0, 8 * MiB, 1 * MiB, m0);
    const s2 = await c.source.snapshot!(UUID_A, { runId: 'run-2', since: 'ferry-run-1' });
    assert.deepEqual(
      s2.disks.map((d) => [d.index, d.mode, d.rescan]),
      [
        [0, 'changed', undefined],
        [1, 'changed', undefined],
      ],
    );
    const at2 = [Buffer.from(m0), Buffer.from(m1)];
    await write(alpha.qmp, 'drive0', 0x77, 4 * MiB, 64 * KiB, m0);
    // The previous image was taken at run-1 and the run-1 release committed it, so
    // `prev` is what the store holds; disk 0 changed at [0,128k) (after s1), [4M,5M)
    // and [8M,9M) (zeroed).
    const changed0 = [
      [0, 128 * KiB, 'data'],
      [4 * MiB, 1 * MiB, 'data'],
      [8 * MiB, 1 * MiB, 'zero'],
    ];
    const changed1 = [[1 * MiB, 64 * KiB, 'data']];
    for (const [i, want] of [changed0, changed1].entries()) {
      disk = await c.source.openDisk(UUID_A, i, s2, await baseLayer(prev[i] as Buffer));
      const ext = await extents(disk);
      assert.deepEqual(
        ext.filter((e) => e.depth === 0).map((e) => [e.offset, e.length, e.kind]),
        want,
        `disk ${i}: only the changed ranges come from the VM`,
      );
      assert.ok(ext.filter((e) => e.depth !== 0).every((e) => e.depth === 1));
      assert.ok((await readAll(disk)).equals(at2[i] as Buffer), `disk ${i} layered = the VM at run-2`);
      await disk.close();
      disk = undefined;
    }
    // Without the previous image the changed disk is read in full, still exact.
    disk = await c.source.openDisk(UUID_A, 0, s2);
    assert.ok((await readAll(disk)).equals(at2[0] as Buffer));
    await disk.close();
    disk = undefined;

    // Rolled back: the changes since run-1 stay tracked for the next run.
    await c.source.release!(UUID_A, s2.id, false);
    left = await leftovers(alpha.qmp);
    assert.deepEqual([left.exports, left.jobs, left.nodes], [[], [], []]);
    assert.ok(
      left.bitmaps.every((b) => b.endsWith(':ferry-run-1')),
      left.bitmaps.join(),
    );
    const s3 = await c.source.snapshot!(UUID_A, { runId: 'run-3', since: 'ferry-run-1' });
    assert.equal(s3.disks[0]?.mode, 'changed');
    disk = await c.source.openDisk(UUID_A, 0, s3, await baseLayer(prev[0] as Buffer));
    assert.deepEqual(
      (await extents(disk)).filter((e) => e.depth === 0).map((e) => [e.offset, e.length, e.kind]),
      changed0,
    );
    assert.ok((await readAll(disk)).equals(m0));
    await disk.close();
    disk = undefined;
    await c.source.release!(UUID_A, s3.id, true);
    await c.source.sweep!(UUID_A, { snapshots: [], checkpoints: [s3.checkpoint as string] });
    left = await leftovers(alpha.qmp);
    assert.deepEqual([left.exports, left.jobs, left.nodes], [[], [], []]);
    assert.deepEqual(
      left.bitmaps.map((b) => b.split(':').pop()),
      ['ferry-run-3', 'ferry-run-3'],
    );
    assert.deepEqual(await readdir(stateDir), [UUID_A]);
    assert.deepEqual(await readdir(join(stateDir, UUID_A)), []);
    // No node of the fleecing overlays is left either (their file children are implicit).
    const files = (await qmp(alpha.qmp, queryNamedBlockNodes)).map((n) => n.file);
    assert.ok(
      files.every((f) => !f.includes(stateDir)),
      files.join(),
    );

    // ── qcow2 keeps the checkpoint across a VM restart; raw does not ─────────────
    await alpha.stop(); // SIGTERM: QEMU shuts down cleanly and stores persistent bitmaps
    const alpha2 = await startVm(
      qmpDir,
      'alpha',
      [
        { file: a0, format: 'qcow2', nodeName: 'disk0' },
        { file: a1, format: 'qcow2' },
      ],
      { uuid: UUID_A },
    );
    procs.push(alpha2);
    const s4 = await c.source.snapshot!(UUID_A, { runId: 'run-4', since: 'ferry-run-3' });
    assert.deepEqual(
      s4.disks.map((d) => d.mode),
      ['changed', 'changed'],
    );
    await c.source.release!(UUID_A, s4.id, true);

    const sb = await c.source.snapshot!('beta', { runId: 'b-1' });
    disk = await c.source.openDisk('beta', 0, sb);
    assert.ok((await readAll(disk)).equals(mb));
    await disk.close();
    disk = undefined;
    await c.source.release!('beta', sb.id, true);
    const sb2 = await c.source.snapshot!('beta', { runId: 'b-2', since: 'ferry-b-1' });
    assert.equal(sb2.disks[0]?.mode, 'changed', 'a raw disk tracks changes while the VM runs');
    await c.source.release!('beta', sb2.id, true);
    await beta.stop();
    const beta2 = await startVm(qmpDir, 'beta', [{ file: b0, format: 'raw' }]);
    procs.push(beta2);
    const sb3 = await c.source.snapshot!('beta', { runId: 'b-3', since: 'ferry-b-2' });
    assert.equal(sb3.disks[0]?.mode, 'full');
    assert.match(sb3.disks[0]?.rescan ?? '', /no change-tracking bitmap ferry-b-2 .*raw/);
    await c.source.release!('beta', sb3.id, false);
    assert.deepEqual(await leftovers(beta2.qmp), { exports: [], jobs: [], nodes: [], bitmaps: [] });

    // QEMU gone: releasing only removes local files.
    const sb4 = await c.source.snapshot!('beta', { runId: 'b-4' });
    await beta2.stop();
    await c.source.release!('beta', sb4.id, true);
    assert.deepEqual(await readdir(join(stateDir, 'beta')), []);
  } finally {
    await disk?.close().catch(() => {});
    for (const p of procs) await p.stop();
  }
});
