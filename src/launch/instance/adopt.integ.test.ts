/**
 * A test instance outliving the process that served its image, against real QEMU (TCG):
 * detach() closes the export and leaves QEMU running; adoptTestInstance() serves the image
 * again on the same socket and QEMU reads through the new server (the image is streamed
 * in through it, checked byte for byte); a QEMU that died is refused and the disks closed.
 * A stopped one is adopted stopped (adoptStoppedInstance) and boots again on the new export.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Disk } from '../../disk/index.js';
import { qemuIo, tempDir } from '../../../test/helpers/qemu.js';
import { storeImage } from '../../../test/helpers/launch.js';
import { rejectsWith } from '../../../test/helpers/errors.js';
import { alive, missing } from '../../../test/helpers/leftovers.js';
import { adoptStoppedInstance, adoptTestInstance, launchInstance } from '../index.js';

const MiB = 1024 * 1024;

/** `d` with a count of its close() calls. */
function counted(d: Disk): { disk: Disk; closes: () => number } {
  let n = 0;
  const disk: Disk = {
    virtualSize: d.virtualSize,
    layers: d.layers,
    names: d.names,
    map: (o, l) => d.map(o, l),
    read: (o, l) => d.read(o, l),
    close: async () => {
      n++;
      await d.close();
    },
  };
  return { disk, closes: () => n };
}

test('a detached test instance keeps running; adopted, it reads its image through the new server', async () => {
  const data = Buffer.alloc(16 * MiB);
  for (let i = 0; i < data.length; i += MiB) data.fill((i / MiB) % 251, i, i + MiB / 2); // half data, half zero
  const img = await storeImage(data);
  const dir = join(await tempDir('ferry-adopt-'), 'i');
  const first = counted(await img.open());
  const inst = await launchInstance({
    id: 'i-0a1b2c3d4e5f60718',
    dir,
    name: 'adopt',
    disk: first.disk,
    type: 'custom:1x128',
  });
  const hmp = (line: string) => inst.qmp('human-monitor-command', { 'command-line': line });
  assert.equal(await hmp(`qemu-io disk0 "write -P 0xee ${3 * MiB} 64k"`), '');

  await inst.detach();
  assert.equal(first.closes(), 1, 'the image disk is released');
  assert.ok(await missing(inst.nbdSocket), 'the export is closed');
  assert.ok(alive(inst.pid), 'QEMU runs on');

  const again = counted(await img.open());
  const adopted = await adoptTestInstance(inst.id, dir, [again.disk]);
  try {
    assert.equal(adopted.pid, inst.pid);
    assert.equal(adopted.state, 'running');
    assert.equal(adopted.materialized, false);
    // Streaming reads every block the overlay lacks: it completes only through the new export.
    await adopted.materialize();
    assert.equal(adopted.materialized, true);
    assert.equal(again.closes(), 1, 'materialised, the image is released');
    await adopted.stop({ timeoutMs: 0 });
    await qemuIo(
      adopted.overlays[0]!,
      'qcow2',
      `read -P 0 0 ${MiB / 2}`,
      `read -P 1 ${MiB} ${MiB / 2}`,
      `read -P 0xee ${3 * MiB} 64k`,
      `read -P 3 ${3 * MiB + 65536} ${MiB / 2 - 65536}`,
      `read -P 15 ${15 * MiB} ${MiB / 2}`,
    );
  } finally {
    await adopted.terminate({ timeoutMs: 0 });
  }
  assert.ok(await missing(dir));
});

test('adopting a test instance whose QEMU died is refused and closes the disks', async () => {
  const img = await storeImage(Buffer.alloc(4 * MiB, 7));
  const dir = join(await tempDir('ferry-adopt-'), 'i');
  const inst = await launchInstance({ dir, name: 'gone', disk: await img.open(), type: 'custom:1x128' });
  await inst.detach();
  process.kill(inst.pid, 'SIGKILL');
  while (alive(inst.pid)) await new Promise((r) => setTimeout(r, 50));
  const d = counted(await img.open());
  await rejectsWith(adoptTestInstance(inst.id, dir, [d.disk]), 'FERRY_LAUNCH_FAILED');
  assert.equal(d.closes(), 1);
  assert.ok(await missing(join(dir, 'nbd.sock')));
});

test('a stopped test instance is adopted stopped; started, it reads through the new server', async () => {
  const data = Buffer.alloc(8 * MiB);
  for (let i = 0; i < data.length; i += MiB) data.fill(i / MiB + 1, i, i + MiB);
  const img = await storeImage(data);
  const dir = join(await tempDir('ferry-adopt-'), 'i');
  const inst = await launchInstance({ dir, name: 'stopped', disk: await img.open(), type: 'custom:1x128' });
  // Recorded stopped while QEMU runs: refused (a second QEMU must never boot the overlays).
  const early = counted(await img.open());
  await rejectsWith(adoptStoppedInstance(inst.id, dir, [early.disk]), 'FERRY_LAUNCH_FAILED');
  assert.equal(early.closes(), 1);

  await inst.stop({ timeoutMs: 0 });
  await inst.detach();
  const d = counted(await img.open());
  const adopted = await adoptStoppedInstance(inst.id, dir, [d.disk]);
  try {
    assert.equal(adopted.state, 'stopped');
    assert.equal(adopted.pid, undefined);
    assert.equal(adopted.materialized, false);
    // Started for it, streamed through the new export, stopped again.
    await adopted.materialize();
    assert.equal(adopted.state, 'stopped');
    assert.equal(d.closes(), 1);
    await qemuIo(adopted.overlays[0]!, 'qcow2', 'read -P 1 0 1M', `read -P 8 ${7 * MiB} 1M`);
    await adopted.start();
    assert.equal(adopted.state, 'running');
    assert.ok(alive(adopted.pid!));
  } finally {
    await adopted.terminate({ timeoutMs: 0 });
  }
  assert.ok(await missing(dir));
});
