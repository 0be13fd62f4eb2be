import { test } from 'node:test';
import assert from 'node:assert/strict';
import { driveName, firmwareOf, selectDisks, vmIdOf } from './inventory.js';
import type { QmpBlockDeviceInfo, QmpBlockInfo, QmpDirtyBitmapInfo } from './qmp/index.js';
import { changeTracking } from './snapshot.js';

const MiB = 1024 * 1024;

function node(
  file: string,
  drv: string,
  extra: { name?: string; compat?: string; ro?: boolean; bitmaps?: QmpDirtyBitmapInfo[] } = {},
): QmpBlockDeviceInfo {
  return {
    file,
    ...(extra.name ? { 'node-name': extra.name } : {}),
    ro: extra.ro ?? false,
    drv,
    backing_file_depth: 0,
    encrypted: false,
    image: {
      filename: file,
      format: drv,
      'virtual-size': 64 * MiB,
      'actual-size': 200704,
      ...(extra.compat ? { 'format-specific': { type: 'qcow2', data: { compat: extra.compat } } } : {}),
    } as QmpBlockDeviceInfo['image'],
    ...(extra.bitmaps ? { 'dirty-bitmaps': extra.bitmaps } : {}),
  };
}

// Shapes as QEMU 7.2 reports them (see connector.integ.test.ts for the live check).
const blocks: QmpBlockInfo[] = [
  {
    device: 'drive0',
    qdev: '/machine/peripheral-anon/device[0]/virtio-backend',
    removable: false,
    locked: false,
    inserted: node('a.qcow2', 'qcow2', { name: 'disk0', compat: '1.1' }),
  },
  // -drive if=none without a device: invisible to the guest.
  { device: 'spare', removable: true, locked: false, inserted: node('s.raw', 'raw', { name: '#block1' }) },
  // CD-ROM with and without media.
  { device: 'cd0', qdev: '/machine/peripheral-anon/device[3]', removable: true, locked: false },
  {
    device: 'cd1',
    qdev: '/machine/peripheral/cd1',
    removable: true,
    locked: false,
    inserted: node('x.iso', 'raw'),
  },
  // UEFI code and variable store.
  {
    device: 'pflash0',
    qdev: '/machine/system.flash0',
    removable: false,
    locked: false,
    inserted: node('/usr/share/OVMF/OVMF_CODE.fd', 'raw', { ro: true }),
  },
  // -blockdev style: no drive id, the device's id in the QOM path.
  {
    device: '',
    qdev: '/machine/peripheral/virtio-disk1/virtio-backend',
    removable: false,
    locked: false,
    inserted: node('b.raw', 'raw', { name: 'libvirt-2-format' }),
  },
  {
    device: 'old',
    qdev: 'scsi0-0-0-0',
    removable: false,
    locked: false,
    inserted: node('c.qcow2', 'qcow2', { name: '#block9', compat: '0.10' }),
  },
];

test('disks: guest-visible, non-removable, not firmware flash, in query-block order', () => {
  const disks = selectDisks(blocks);
  assert.deepEqual(
    disks.map((d) => [d.index, d.name, d.node, d.format, d.persistentBitmaps]),
    [
      [0, 'drive0', 'disk0', 'qcow2', true],
      [1, 'virtio-disk1', 'libvirt-2-format', 'raw', false],
      // qcow2 v2 (compat 0.10) cannot store bitmaps.
      [2, 'old', '#block9', 'qcow2', false],
    ],
  );
  assert.equal(disks[0]?.virtualSize, 64 * MiB);
  assert.equal(disks[0]?.allocation, 200704);
});

test('drive names, VM ids, firmware heuristic', () => {
  assert.equal(
    driveName({ device: '', qdev: 'virtio-disk0', removable: false, locked: false }),
    'virtio-disk0',
  );
  assert.equal(vmIdOf('00000000-0000-0000-0000-000000000000', '/run/vms/web-1.qmp'), 'web-1');
  assert.equal(
    vmIdOf('3C9A1F0E-5B7D-4E2A-8C61-9F0D2B4A7E13', '/x.qmp'),
    '3c9a1f0e-5b7d-4e2a-8c61-9f0d2b4a7e13',
  );
  assert.equal(firmwareOf(blocks, []), 'efi');
  const plain = blocks.filter((b) => b.device !== 'pflash0');
  assert.equal(firmwareOf(plain, []), 'bios');
  assert.equal(firmwareOf(plain, [node('/var/lib/libvirt/qemu/nvram/vm_VARS.fd', 'raw')]), 'bios');
  assert.equal(firmwareOf(plain, [node('/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd', 'raw')]), 'efi');
});

test('change tracking: changed only with a consistent, recording, free bitmap of that name', () => {
  const bm = (over: Partial<QmpDirtyBitmapInfo>): QmpDirtyBitmapInfo => ({
    name: 'ferry-r1',
    count: 0,
    granularity: 65536,
    recording: true,
    busy: false,
    persistent: true,
    ...over,
  });
  const [qcow] = selectDisks(blocks);
  const disk = (b: QmpDirtyBitmapInfo[], persistent = true) => ({
    ...(qcow as NonNullable<typeof qcow>),
    persistentBitmaps: persistent,
    format: persistent ? 'qcow2' : 'raw',
    bitmaps: b,
  });
  assert.deepEqual(changeTracking(disk([bm({})]), undefined), { mode: 'full' });
  assert.deepEqual(changeTracking(disk([bm({})]), 'ferry-r1'), { mode: 'changed' });
  const why = (b: QmpDirtyBitmapInfo[], persistent = true) => changeTracking(disk(b, persistent), 'ferry-r1');
  assert.match(why([]).rescan ?? '', /drive0: no change-tracking bitmap ferry-r1 \(a new or replaced disk/);
  assert.match(why([], false).rescan ?? '', /raw disk loses it when the VM restarts/);
  assert.match(why([bm({ name: 'ferry-r0' })]).rescan ?? '', /no change-tracking bitmap/);
  assert.match(why([bm({ inconsistent: true })]).rescan ?? '', /inconsistent/);
  assert.match(why([bm({ recording: false })]).rescan ?? '', /not recording/);
  assert.match(why([bm({ busy: true })]).rescan ?? '', /in use/);
  for (const b of [[], [bm({ inconsistent: true })], [bm({ recording: false })], [bm({ busy: true })]]) {
    assert.equal(why(b).mode, 'full');
  }
});
