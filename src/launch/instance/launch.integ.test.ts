/**
 * launchInstance against real qemu-system-x86_64 and qemu-img (TCG here): a 2 TiB sparse
 * store image starts in well under 2 s of preparation, writes land in the overlay and
 * never in the image, stop() escalates from ACPI to signals, start() boots the same overlay again, and every failed launch
 * (QEMU refuses, missing program, directory in use, too little memory) leaves nothing
 * behind and closes the disks it was given.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { storeImage } from '../../../test/helpers/launch.js';
import { openDisk, type Disk } from '../../disk/index.js';
import { openImageDisk, writeImage, type Repository } from '../../store/index.js';
import { qemuImg, qemuIo, tempDir } from '../../../test/helpers/qemu.js';
import { memoryRepo } from '../../../test/store/helpers.js';
import { launchInstance, type Instance } from '../index.js';
import { nbdBacking } from './overlay.js';
import { rejectsWith } from '../../../test/helpers/errors.js';
import { alive, missing } from '../../../test/helpers/leftovers.js';

const TiB = 1024 ** 4;
const run = promisify(execFile);
const storeImageOf = async (data: Buffer) => (await storeImage(data)).open();
let work: string;
let repo: Repository;
let bigId: string;
const running: Instance[] = [];

/** A view of disk 0 of `id` that counts its close() calls. */
async function counted(id: string): Promise<{ disk: Disk; closes: () => number }> {
  const d = (await openImageDisk(repo, id, 0)).disk;
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

before(async () => {
  work = await tempDir('ferry-launch-');
  repo = await memoryRepo({ blockSize: 65536, fanout: 2048 });
  // 2 TiB, sparse: 1 MiB of data at 1 TiB, the rest never written.
  const big = join(work, 'big.qcow2');
  await qemuImg('create', '-q', '-f', 'qcow2', big, '2T');
  await qemuIo(big, 'qcow2', `write -P 0x5a ${TiB} 1M`);
  const src = await openDisk(big);
  try {
    bigId = (await writeImage(repo, { name: 'big', disks: [{ name: 'd0', disk: src }] })).id;
  } finally {
    await src.close();
  }
});

after(async () => {
  await Promise.allSettled(running.map((i) => i.terminate({ timeoutMs: 0 })));
});

test('a 2 TiB image: < 2 s before QEMU starts; the overlay is backed by the export; writes stay in it', async () => {
  const { disk, closes } = await counted(bigId);
  const dir = join(work, 'big');
  const t0 = performance.now();
  const inst = await launchInstance({ dir, name: 'big-1', disk, type: 'custom:1x128' });
  running.push(inst);
  const wall = performance.now() - t0;
  assert.ok(inst.timings.prepareMs < 2000, `prepare took ${inst.timings.prepareMs} ms`);
  assert.ok(wall < inst.timings.prepareMs + inst.timings.startMs + 500);
  assert.equal(inst.state, 'running');
  assert.equal(inst.accel, 'tcg'); // no /dev/kvm on the test host
  assert.ok(alive(inst.pid));
  assert.deepEqual(await inst.qmp('query-status'), { status: 'running', singlestep: false, running: true });

  const info = JSON.parse(await qemuImg('info', '-U', '--output=json', inst.overlays[0]!)) as Record<
    string,
    unknown
  >;
  assert.equal(info['virtual-size'], 2 * TiB);
  // The export, with reconnect-delay: QEMU survives a restart of the image server.
  assert.equal(info['backing-filename'], nbdBacking(inst.nbdSocket, 'disk0'));
  assert.match(info['backing-filename'] as string, /"reconnect-delay":300/);
  assert.equal(info['backing-filename-format'], 'raw');
  assert.ok(
    ((await stat(inst.overlays[0]!)).size as number) < 1024 * 1024,
    'the overlay starts nearly empty',
  );

  // A write through QEMU's block layer, as a guest write would go.
  const hmp = (line: string) => inst.qmp('human-monitor-command', { 'command-line': line });
  assert.equal(await hmp(`qemu-io disk0 "write -P 0xcd ${TiB} 64k"`), '');

  // SeaBIOS with nothing to boot ignores the power button: stop() falls back to SIGTERM.
  const s0 = Date.now();
  const exit = await inst.stop({ timeoutMs: 300 });
  assert.ok(Date.now() - s0 >= 300);
  assert.equal(inst.state, 'stopped');
  assert.deepEqual(exit, inst.exit);
  assert.ok(!alive(inst.pid));
  assert.equal(closes(), 0, 'stop keeps the disks open');

  // Stopped, the overlay still reads through the export: the write is in the overlay,
  // the bytes around it come from the image, and the image itself is unchanged.
  const overlay = inst.overlays[0]!;
  await qemuIo(
    overlay,
    'qcow2',
    `read -P 0xcd ${TiB} 64k`,
    `read -P 0x5a ${TiB + 65536} 64k`,
    'read -P 0 0 1M',
  );
  // The overlay alone (backing cut off): the only data it holds is the 64 KiB written.
  const alone = `json:${JSON.stringify({ driver: 'qcow2', file: { driver: 'file', filename: overlay }, backing: null })}`;
  const map = JSON.parse(await qemuImg('map', '--output=json', alone)) as {
    start: number;
    length: number;
    data: boolean;
  }[];
  assert.deepEqual(
    map.filter((m) => m.data).map((m) => [m.start, m.length]),
    [[TiB, 65536]],
  );
  const image = (await openImageDisk(repo, bigId, 0)).disk;
  try {
    assert.deepEqual(await image.read(TiB, 65536), Buffer.alloc(65536, 0x5a));
  } finally {
    await image.close();
  }
  assert.ok(inst.nbdStats.bytesRead > 0);

  // Started again: a new QEMU on the same overlay sees the guest's write and the image.
  const firstPid = inst.pid;
  await inst.start();
  assert.equal(inst.state, 'running');
  assert.notEqual(inst.pid, firstPid);
  assert.ok(alive(inst.pid));
  // The new QEMU writes into the same overlay; the first boot's write is still there.
  assert.equal(await hmp(`qemu-io disk0 "write -P 0xef ${2 * TiB - 65536} 64k"`), '');
  await inst.start(); // running: nothing to do
  await inst.stop({ timeoutMs: 0 });
  assert.equal(inst.state, 'stopped');
  await qemuIo(overlay, 'qcow2', `read -P 0xcd ${TiB} 64k`, `read -P 0xef ${2 * TiB - 65536} 64k`);

  await inst.terminate();
  assert.equal(inst.state, 'terminated');
  assert.equal(closes(), 1);
  assert.ok(await missing(dir), 'the directory the launch created is gone');
  await inst.terminate(); // idempotent
  await rejectsWith(inst.start(), 'FERRY_INSTANCE_STATE');
});

test('QEMU refusing to start: FERRY_LAUNCH_FAILED with its message; nothing left; disks closed', async () => {
  const dir = join(work, 'refused');
  await mkdir(dir);
  await writeFile(join(dir, 'keep.txt'), 'not the instance’s\n');
  const fake = { code: join(work, 'code.fd'), vars: join(work, 'vars.fd') };
  await writeFile(fake.code, Buffer.alloc(1000));
  await writeFile(fake.vars, Buffer.alloc(1000));
  const { disk, closes } = await counted(bigId);
  const err = await rejectsWith(
    launchInstance({ dir, name: 'bad-fw', disk, type: 'custom:1x128', firmware: 'uefi', ovmf: fake }),
    'FERRY_LAUNCH_FAILED',
  );
  assert.match(String(err.details['stderr']), /pflash|firmware/i);
  assert.deepEqual(await readdir(dir), ['keep.txt']);
  assert.equal(closes(), 1);
});

test('a missing program or a QEMU that exits at once leaves nothing behind', async () => {
  const a = await counted(bigId);
  await rejectsWith(
    launchInstance({
      dir: join(work, 'noimg'),
      name: 'x',
      disk: a.disk,
      type: 't2.nano',
      qemuImgBinary: '/nonexistent/qemu-img',
    }),
    'FERRY_LAUNCH_TOOL_MISSING',
  );
  assert.equal(a.closes(), 1);
  assert.ok(await missing(join(work, 'noimg')));
  const b = await counted(bigId);
  await rejectsWith(
    launchInstance({
      dir: join(work, 'false'),
      name: 'x',
      disk: b.disk,
      type: 't2.nano',
      qemuBinary: '/bin/false',
    }),
    'FERRY_LAUNCH_FAILED',
  );
  assert.equal(b.closes(), 1);
  assert.ok(await missing(join(work, 'false')));
});

test('more memory than the host has is refused before anything is created', async () => {
  const c = await counted(bigId);
  await rejectsWith(
    launchInstance({ dir: join(work, 'huge'), name: 'x', disk: c.disk, type: 'custom:1x1048576' }),
    'FERRY_LAUNCH_CAPACITY',
  );
  assert.ok(await missing(join(work, 'huge')));
  assert.equal(c.closes(), 1);
});

test('a directory holding an instance is refused and that instance is left alone', async () => {
  const dir = join(work, 'shared');
  const first = await counted(bigId);
  const inst = await launchInstance({
    dir,
    name: 'one',
    disk: first.disk,
    type: 'custom:1x128',
    nic: 'none',
  });
  running.push(inst);
  const second = await counted(bigId);
  await rejectsWith(
    launchInstance({ dir, name: 'two', disk: second.disk, type: 'custom:1x128' }),
    'FERRY_LAUNCH_DIR_IN_USE',
  );
  assert.equal(second.closes(), 1);
  assert.equal(inst.state, 'running');
  assert.ok(alive(inst.pid));
  assert.deepEqual(((await inst.qmp('query-status')) as { status: string }).status, 'running');
  assert.ok(!(await missing(inst.overlays[0]!)) && !(await missing(inst.nbdSocket)));
  await inst.terminate({ timeoutMs: 0 });
  assert.ok(!alive(inst.pid));
  assert.ok(await missing(dir));
});

test('an instance on an existing tap device (kept down: nothing leaves this host)', async () => {
  const ifname = `ferrytap${process.pid % 100000}`;
  await run('ip', ['tuntap', 'add', 'dev', ifname, 'mode', 'tap']);
  const img = await storeImageOf(Buffer.alloc(1024 * 1024));
  const dir = join(work, 'tap');
  const inst = await launchInstance({
    dir,
    name: 'tap-1',
    disk: img,
    type: 'custom:1x128',
    network: `tap:${ifname}`,
  });
  try {
    const info = (await inst.qmp('human-monitor-command', { 'command-line': 'info network' })) as string;
    assert.match(info, new RegExp(`tap.*ifname=${ifname}`));
  } finally {
    await inst.terminate({ timeoutMs: 0 });
    await run('ip', ['tuntap', 'del', 'dev', ifname, 'mode', 'tap']);
  }
  assert.ok(await missing(dir));
});
