import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checksumDisk } from '../../disk/index.js';
import { pseudoRandom, qemuImg, sha256File, tempDir } from '../../../test/helpers/qemu.js';
import { createFolderConnector } from '../index.js';

test('folder source: one server per directory, disks detected by content, descriptor facts and order', async () => {
  const root = await tempDir();
  // Plain raw images, named so natural order differs from byte order.
  await mkdir(join(root, 'plain'));
  await writeFile(join(root, 'plain', 'disk10.img'), pseudoRandom(64 * 1024, 2));
  await writeFile(join(root, 'plain', 'disk2.img'), pseudoRandom(128 * 1024, 3));
  await writeFile(join(root, 'plain', 'notes.txt'), 'not a disk');
  await writeFile(join(root, 'plain', 'random.dat'), pseudoRandom(4096, 4)); // raw without a raw extension
  // A VMX export whose device order is the reverse of the names; one disk is a qcow2 with a backing file.
  await mkdir(join(root, 'vmx-vm'));
  await qemuImg('create', '-f', 'vmdk', join(root, 'vmx-vm', 'a-data.vmdk'), '1M');
  await qemuImg(
    'create',
    '-f',
    'vmdk',
    '-o',
    'subformat=monolithicFlat',
    join(root, 'vmx-vm', 'z-boot.vmdk'),
    '2M',
  );
  await writeFile(
    join(root, 'vmx-vm', 'vm.vmx'),
    'displayName = "App Server"\nnumvcpus = "2"\nmemsize = "2048"\nscsi0:0.fileName = "z-boot.vmdk"\nscsi0:1.fileName = "a-data.vmdk"\n',
  );
  await mkdir(join(root, 'chain'));
  await qemuImg('create', '-f', 'qcow2', join(root, 'chain', 'base.qcow2'), '1M');
  await qemuImg('create', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', join(root, 'chain', 'top.qcow2'));
  await mkdir(join(root, 'empty'));

  const c = await createFolderConnector({ connectorId: 'c-test', imagesDir: root, version: '0.1.0' });
  assert.equal(c.descriptor.kind, 'local');
  assert.match(c.descriptor.vmManagerId, /^folder-[0-9a-f]{12}$/);
  const servers = await c.inventory.collect();
  assert.deepEqual(
    servers.map((s) => s.vmId),
    ['chain', 'empty', 'plain', 'vmx-vm'],
  );
  const [chain, empty, plain, vmx] = servers;
  assert.deepEqual(
    plain!.facts.disks.map((d) => [d.name, d.format, d.virtualSize]),
    [
      ['disk2.img', 'raw', 128 * 1024],
      ['disk10.img', 'raw', 64 * 1024],
    ],
  );
  assert.equal(plain!.vmManagerType, undefined);
  assert.deepEqual(empty!.facts.disks, []);
  assert.deepEqual(
    chain!.facts.disks.map((d) => [d.name, d.files]),
    [['top.qcow2', ['base.qcow2']]],
    'a backing file is part of its child, not a disk of its own',
  );
  assert.equal(vmx!.vmName, 'App Server');
  assert.equal(vmx!.vmManagerType, 'VSPHERE');
  assert.deepEqual(vmx!.facts.descriptor, { kind: 'vmx', file: 'vm.vmx' });
  assert.equal(vmx!.facts.cpus, 2);
  assert.equal(vmx!.facts.memoryMiB, 2048);
  assert.deepEqual(
    vmx!.facts.disks.map((d) => [d.name, d.virtualSize, d.files]),
    [
      ['z-boot.vmdk', 2 << 20, ['z-boot-flat.vmdk']],
      ['a-data.vmdk', 1 << 20, []],
    ],
  );

  // Disk N opens the N-th disk in that order.
  const d = await c.source.openDisk('plain', 1);
  try {
    assert.equal(await checksumDisk(d), await sha256File(join(root, 'plain', 'disk10.img')));
  } finally {
    await d.close();
  }
  await assert.rejects(c.source.openDisk('plain', 2), { code: 'FERRY_NOT_FOUND' });
  await assert.rejects(c.source.openDisk('../etc', 0), { code: 'FERRY_NOT_FOUND' });
});

test('folder source: a missing images directory is a clear argument error', async () => {
  await assert.rejects(
    createFolderConnector({ connectorId: 'c', imagesDir: '/nonexistent/x', version: '0' }),
    {
      code: 'FERRY_INVALID_ARGUMENT',
    },
  );
});
