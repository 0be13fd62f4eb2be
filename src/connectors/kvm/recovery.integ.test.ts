import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { qemuImg, qemuIo } from '../../../test/helpers/qemu.js';
import { startVm } from '../../../test/helpers/kvm.js';
import { leftovers, qmp, rejectsWith, setup } from '../../../test/helpers/kvm-connector.js';
import { createKvmConnector } from './connector.js';
import { nbdServerStart, nbdServerStop, queryNamedBlockNodes } from './qmp/index.js';

/** The bitmaps of node g0. */
const bitmaps = async (vm: string) =>
  (await qmp(vm, queryNamedBlockNodes)).find((n) => n['node-name'] === 'g0')?.['dirty-bitmaps'];

test('KVM connector: a lost process — reattach from a new instance, redo a half-made snapshot, sweep removes everything', async () => {
  const { root, qmpDir, stateDir } = await setup();
  const g0 = join(root, 'g0.qcow2');
  await qemuImg('create', '-f', 'qcow2', g0, '64M');
  await qemuIo(g0, 'qcow2', 'write -P 0x5a 0 1M');
  const vm = await startVm(qmpDir, 'gamma', [{ file: g0, format: 'qcow2', nodeName: 'g0' }]);
  try {
    const make = () => createKvmConnector({ connectorId: 'c', version: '0', qmpDir, stateDir });
    const a = await make();
    const s1 = await a.source.snapshot!('gamma', { runId: 'sms-r-0123456789abcdef0' });
    await a.source.release!('gamma', s1.id, true);

    // A snapshot that fails part-way (QEMU already runs an NBD server Ferry did not start)
    // leaves nothing, and the checkpoint keeps recording.
    await qmp(vm.qmp, (q) => nbdServerStart(q, { type: 'unix', path: join(root, 'other.nbd') }));
    await rejectsWith(
      a.source.snapshot!('gamma', { runId: 'run-f', since: s1.checkpoint as string }),
      'FERRY_OPERATION_NOT_PERMITTED',
    );
    await qmp(vm.qmp, nbdServerStop);
    assert.deepEqual(await leftovers(vm.qmp), {
      exports: [],
      jobs: [],
      nodes: [],
      bitmaps: [`g0:${s1.checkpoint}`],
    });
    assert.equal((await bitmaps(vm.qmp))?.[0]?.recording, true);
    assert.deepEqual(await readdir(join(stateDir, 'gamma')), []);

    const s2 = await a.source.snapshot!('gamma', {
      runId: 'sms-r-0123456789abcdef1',
      since: s1.checkpoint as string,
    });
    assert.equal(s2.disks[0]?.mode, 'changed');
    // Long run ids still give QEMU node names of at most 31 bytes.
    const held = await leftovers(vm.qmp);
    assert.ok(
      held.nodes.every((n) => n.length <= 31),
      held.nodes.join(),
    );

    // A new process finds the snapshot by its run id.
    const b = await make();
    const again = await b.source.snapshot!('gamma', {
      runId: 'sms-r-0123456789abcdef1',
      since: s1.checkpoint as string,
    });
    assert.deepEqual(again, s2);
    // Half-made (an export is gone): undone and taken again.
    await qmp(vm.qmp, (q) => q.execute('block-export-del', { id: held.exports[0], mode: 'hard' }));
    await new Promise((r) => setTimeout(r, 200));
    const redo = await b.source.snapshot!('gamma', {
      runId: 'sms-r-0123456789abcdef1',
      since: s1.checkpoint as string,
    });
    assert.equal(redo.id, s2.id);
    assert.equal(redo.disks[0]?.mode, 'changed', 'the undo re-enabled the checkpoint bitmap');
    assert.deepEqual((await leftovers(vm.qmp)).exports, held.exports);

    // Lost again: sweep keeping the committed checkpoint undoes the snapshot and keeps it recording.
    const c = await make();
    await c.source.sweep!('gamma', { snapshots: [], checkpoints: [s1.checkpoint as string] });
    let left = await leftovers(vm.qmp);
    assert.deepEqual([left.exports, left.jobs, left.nodes], [[], [], []]);
    assert.deepEqual(left.bitmaps, [`g0:${s1.checkpoint}`]);
    assert.equal((await bitmaps(vm.qmp))?.[0]?.recording, true);
    // Another held snapshot, then a sweep that keeps nothing: nothing of Ferry is left.
    await c.source.snapshot!('gamma', { runId: 'run-z', since: s1.checkpoint as string });
    await make().then((d) => d.source.sweep!('gamma', { snapshots: [], checkpoints: [] }));
    left = await leftovers(vm.qmp);
    assert.deepEqual(left, { exports: [], jobs: [], nodes: [], bitmaps: [] });
    assert.deepEqual(await readdir(join(stateDir, 'gamma')), []);
    assert.deepEqual((await readdir(stateDir)).sort(), ['gamma']);
  } finally {
    await vm.stop();
  }
});
