import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Disk } from '../../disk/index.js';
import { FerryError } from '../../errors/index.js';
import { validateLaunch, type LaunchOptions } from './options.js';
import { qemuArgs, qemuValue, type QemuPlan } from './qemu-args.js';

const plan = (over: Partial<QemuPlan> = {}): QemuPlan => ({
  name: 'web-1',
  accel: 'tcg',
  vcpus: 2,
  memoryMiB: 1024,
  overlays: ['/i/overlay-0.qcow2', '/i/overlay-1.qcow2'],
  bus: 'virtio',
  nic: 'virtio-net-pci',
  mac: '52:54:00:12:34:56',
  consoleLog: '/i/console.log',
  qmpSocket: '/i/qmp.sock',
  pidFile: '/i/qemu.pid',
  noReboot: false,
  ...over,
});

/** The values following each occurrence of `flag`. */
const values = (args: string[], flag: string) =>
  args.flatMap((a, i) => (a === flag ? [args[i + 1] as string] : []));

test('default plan: pc machine, TCG with -cpu max, sizes, console, QMP, virtio disks in boot order, user NIC', () => {
  const a = qemuArgs(plan());
  assert.deepEqual(values(a, '-machine'), ['pc,accel=tcg']);
  assert.deepEqual(values(a, '-cpu'), ['max']);
  assert.deepEqual(values(a, '-smp'), ['2']);
  assert.deepEqual(values(a, '-m'), ['1024']);
  assert.ok(a.includes('-nodefaults') && a.includes('-no-user-config'));
  assert.deepEqual(values(a, '-serial'), ['chardev:console']);
  assert.ok(values(a, '-chardev').includes('file,id=console,path=/i/console.log,append=on'));
  assert.ok(values(a, '-chardev').includes('socket,id=qmp,path=/i/qmp.sock,server=on,wait=off'));
  assert.deepEqual(values(a, '-mon'), ['chardev=qmp,mode=control']);
  assert.deepEqual(values(a, '-device'), [
    'virtio-blk-pci,drive=disk0,bootindex=1',
    'virtio-blk-pci,drive=disk1,bootindex=2',
  ]);
  assert.match(values(a, '-drive')[0]!, /^file=\/i\/overlay-0\.qcow2,format=qcow2,if=none,id=disk0,/);
  assert.deepEqual(values(a, '-nic'), ['user,model=virtio-net-pci,mac=52:54:00:12:34:56']);
  assert.ok(values(a, '-sandbox')[0]!.startsWith('on,'));
  assert.ok(!a.includes('-no-reboot'));
});

test('KVM uses -cpu host', () => {
  const a = qemuArgs(plan({ accel: 'kvm' }));
  assert.deepEqual(values(a, '-machine'), ['pc,accel=kvm']);
  assert.deepEqual(values(a, '-cpu'), ['host']);
});

test('buses: IDE channels/units, one AHCI controller, one virtio-scsi controller', () => {
  const four = ['/a', '/b', '/c', '/d'];
  assert.deepEqual(values(qemuArgs(plan({ bus: 'ide', overlays: four })), '-device'), [
    'ide-hd,drive=disk0,bootindex=1,bus=ide.0,unit=0',
    'ide-hd,drive=disk1,bootindex=2,bus=ide.0,unit=1',
    'ide-hd,drive=disk2,bootindex=3,bus=ide.1,unit=0',
    'ide-hd,drive=disk3,bootindex=4,bus=ide.1,unit=1',
  ]);
  assert.deepEqual(values(qemuArgs(plan({ bus: 'sata' })), '-device'), [
    'ahci,id=ahci0',
    'ide-hd,drive=disk0,bootindex=1,bus=ahci0.0',
    'ide-hd,drive=disk1,bootindex=2,bus=ahci0.1',
  ]);
  assert.deepEqual(values(qemuArgs(plan({ bus: 'scsi' })), '-device'), [
    'virtio-scsi-pci,id=scsi0',
    'scsi-hd,drive=disk0,bootindex=1,bus=scsi0.0,channel=0,scsi-id=0,lun=0',
    'scsi-hd,drive=disk1,bootindex=2,bus=scsi0.0,channel=0,scsi-id=1,lun=0',
  ]);
});

test('UEFI pflash pair, seed CD-ROM, no NIC, -no-reboot, commas in paths escaped', () => {
  const a = qemuArgs(
    plan({
      uefi: { code: '/usr/share/OVMF/OVMF_CODE.fd', vars: '/i,x/efivars.fd' },
      seedIso: '/s/seed,1.iso',
      nic: 'none',
      noReboot: true,
      overlays: ['/i,x/overlay-0.qcow2'],
    }),
  );
  const drives = values(a, '-drive');
  assert.ok(drives.includes('if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd'));
  assert.ok(drives.includes('if=pflash,format=raw,unit=1,file=/i,,x/efivars.fd'));
  assert.ok(drives.some((d) => d.startsWith('file=/i,,x/overlay-0.qcow2,')));
  assert.ok(drives.includes('file=/s/seed,,1.iso,format=raw,if=none,id=seed,media=cdrom,readonly=on'));
  assert.ok(values(a, '-device').includes('ide-cd,drive=seed,bus=ide.1,unit=1'));
  assert.deepEqual(values(a, '-nic'), ['none']);
  assert.ok(a.includes('-no-reboot'));
  assert.equal(qemuValue('a,b,,c'), 'a,,b,,,,c');
});

const disk = {
  virtualSize: 1 << 20,
  read: async () => Buffer.alloc(0),
  close: async () => {},
} as unknown as Disk;
const base: LaunchOptions = { dir: '/tmp/i-test', name: 'web-1', disk, type: 't3.micro' };
const refused = (over: Partial<LaunchOptions>, code = 'FERRY_INVALID_ARGUMENT') =>
  assert.throws(
    () => validateLaunch({ ...base, ...over }),
    (e: unknown) => FerryError.is(e) && e.code === code,
    JSON.stringify(over, (k, v: unknown) => (k === 'disk' ? '…' : v)),
  );

test('launch options: defaults and validation before anything is created', () => {
  const r = validateLaunch(base);
  assert.equal(r.bus, 'virtio');
  assert.equal(r.nic, 'virtio-net-pci');
  assert.equal(r.firmware, 'bios');
  assert.match(r.id, /^i-[0-9a-f]{17}$/);
  assert.match(r.mac, /^52:54:00(:[0-9a-f]{2}){3}$/);
  assert.deepEqual(r.type, { name: 't3.micro', vcpus: 2, memoryMiB: 1024 });
  assert.equal(validateLaunch({ ...base, mac: '02:AA:bb:cc:dd:ee' }).mac, '02:aa:bb:cc:dd:ee');
  refused({ name: '' });
  refused({ name: '-x' });
  refused({ name: 'a,b' });
  refused({ name: 'x'.repeat(65) });
  refused({ mac: '01:00:5e:00:00:01' }); // multicast
  refused({ mac: '52:54:00:12:34' });
  refused({ bus: 'floppy' as never });
  refused({ nic: 'ne2k' as never });
  refused({ firmware: 'coreboot' as never });
  refused({ dir: `/tmp/${'d'.repeat(100)}` });
  refused({ disk: [] });
  refused({ disk: Array.from({ length: 5 }, () => disk), bus: 'ide' });
  refused({ disk: Array.from({ length: 4 }, () => disk), bus: 'ide', seedIso: '/s.iso' });
  refused({ disk: Array.from({ length: 17 }, () => disk) });
  refused({ id: 'web-1' });
  refused({ startTimeoutMs: 0 });
  refused({ type: 'custom:0x1' }, 'FERRY_LAUNCH_INSTANCE_TYPE_INVALID');
  validateLaunch({ ...base, disk: Array.from({ length: 4 }, () => disk), bus: 'ide' });
});

test('network: user by default, an existing tap device when asked; anything else refused', () => {
  assert.deepEqual(values(qemuArgs(plan({ network: { kind: 'tap', ifname: 'tap-web1' } })), '-nic'), [
    'tap,ifname=tap-web1,script=no,downscript=no,model=virtio-net-pci,mac=52:54:00:12:34:56',
  ]);
  const base = {
    dir: '/tmp/i',
    name: 'n',
    disk: { read: () => undefined } as unknown as Disk,
    type: 't3.nano',
  };
  assert.deepEqual(validateLaunch({ ...base, network: 'tap:br0-tap' } as LaunchOptions).network, {
    kind: 'tap',
    ifname: 'br0-tap',
  });
  assert.deepEqual(validateLaunch(base as LaunchOptions).network, { kind: 'user' });
  for (const network of ['tap:', 'tap:a,b', 'tap:0123456789abcdef', 'bridge:br0', 'tap:../x', 'tap:a b']) {
    assert.throws(
      () => validateLaunch({ ...base, network } as LaunchOptions),
      (e: unknown) => FerryError.is(e) && e.code === 'FERRY_INVALID_ARGUMENT',
      network,
    );
  }
});

test('port forwards: loopback hostfwd per forward on the user network; refused on tap or out of range', () => {
  assert.deepEqual(
    values(
      qemuArgs(
        plan({
          forwards: [
            { hostPort: 40022, guestPort: 22 },
            { hostPort: 40080, guestPort: 80 },
          ],
        }),
      ),
      '-nic',
    ),
    [
      'user,model=virtio-net-pci,mac=52:54:00:12:34:56,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:40080-:80',
    ],
  );
  const base = {
    dir: '/tmp/i',
    name: 'n',
    disk: { read: () => undefined } as unknown as Disk,
    type: 't3.nano',
  };
  for (const o of [
    { forwards: [{ hostPort: 0, guestPort: 22 }] },
    { forwards: [{ hostPort: 40000, guestPort: 70000 }] },
    { forwards: [{ hostPort: 40000, guestPort: 22 }], network: 'tap:t0' },
    { forwards: Array.from({ length: 17 }, (_, i) => ({ hostPort: 40000 + i, guestPort: 22 })) },
  ]) {
    assert.throws(
      () => validateLaunch({ ...base, ...o } as LaunchOptions),
      (e: unknown) => FerryError.is(e) && e.code === 'FERRY_INVALID_ARGUMENT',
    );
  }
});
