/**
 * End to end, agentless replication of a running QEMU VM (issue: KVM connector):
 * a bootable disk (../shared/tools/boot) → a VM with a QMP socket in the server's
 * --qmp-dir, plus a data disk → catalog → replication job → first run (full) → the boot
 * marker changed inside the running VM through QEMU's block layer (HMP qemu-io) → second
 * run reads about as many bytes as changed → the exported second image boots and prints
 * the new marker; both disks of each image come from one point in time; nothing of
 * Ferry's is left in QEMU afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SMS } from '@aws-sdk/client-sms';
import {
  humanMonitorCommand,
  queryBlock,
  queryBlockExports,
  queryJobs,
  queryNamedBlockNodes,
  QmpClient,
} from '../../src/connectors/kvm/index.js';
import { ferry, pseudoRandom, qemuImg, sha256File, tempDir } from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { smsClient, waitForRun } from '../helpers/sms.js';
import { bootTools } from '../helpers/boot.js';

const run = promisify(execFile);
const BOOT = bootTools();
const SECTOR = 512;

let work: string;
let qmpDir: string;
let vm: ChildProcess | undefined;
let server: RunningServer | undefined;
let sms: SMS;
let bootRaw: string;
let dataRaw: string;

/** Raw bytes of the boot disk after set-marker.sh changed its marker (on a copy). */
async function withMarker(raw: string, text: string): Promise<Buffer> {
  const copy = join(work, `marker-${text}.raw`);
  await copyFile(raw, copy);
  await run('bash', [join(BOOT, 'set-marker.sh'), copy, text, 'raw']);
  return readFile(copy);
}

/** Runs HMP commands over QMP, connecting only for them (QEMU serves one QMP client). */
async function hmp(lines: string[]): Promise<void> {
  const q = await QmpClient.connect({ path: join(qmpDir, 'vm1.qmp') }, { connectTimeoutMs: 30_000 });
  try {
    for (const line of lines) {
      const out = await humanMonitorCommand(q, line);
      assert.equal(out, '', `${line}: ${out}`);
    }
  } finally {
    await q.close();
  }
}

before(async () => {
  work = await tempDir('ferry-kvm-e2e-');
  qmpDir = join(work, 'qmp');
  await run('mkdir', ['-p', qmpDir]);
  bootRaw = join(work, 'boot.raw');
  await run('bash', [join(BOOT, 'make-bootable.sh'), bootRaw, 'first'], { maxBuffer: 1 << 24 });
  // qcow2: persistent dirty bitmaps; a second, raw data disk (bitmaps in memory only).
  await qemuImg('convert', '-f', 'raw', '-O', 'qcow2', bootRaw, join(work, 'boot.qcow2'));
  dataRaw = join(work, 'data.raw');
  await writeFile(dataRaw, Buffer.concat([pseudoRandom(3 << 20, 5), Buffer.alloc(5 << 20)]));
  await copyFile(dataRaw, join(work, 'data-vm.raw'));
  vm = spawn(
    'qemu-system-x86_64',
    [
      '-name',
      'vm1',
      '-no-shutdown',
      '-nodefaults',
      '-display',
      'none',
      '-m',
      '256',
      '-machine',
      'accel=kvm:tcg',
      '-qmp',
      `unix:${join(qmpDir, 'vm1.qmp')},server=on,wait=off`,
      '-serial',
      `file:${join(work, 'console.log')}`,
      '-drive',
      `file=${join(work, 'boot.qcow2')},format=qcow2,if=none,id=drive0,node-name=disk0`,
      '-device',
      'virtio-blk-pci,drive=drive0',
      '-drive',
      `file=${join(work, 'data-vm.raw')},format=raw,if=none,id=drive1,node-name=disk1`,
      '-device',
      'virtio-blk-pci,drive=drive1',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  server = await startServer({
    args: ['--qmp-dir', qmpDir, '--frequency-unit', 'minutes'],
    timeoutMs: 60_000,
  });
  sms = smsClient(server);
});

after(async () => {
  sms?.destroy();
  await server?.stop();
  vm?.kill('SIGKILL');
});

async function exportDisk(amiId: string, disk: number): Promise<string> {
  const out = join(work, `${amiId}-${disk}.raw`);
  const r = await ferry([
    'images',
    'export',
    amiId,
    '--data-dir',
    server!.dataDir,
    '--disk',
    String(disk),
    '-O',
    'raw',
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return out;
}

test('a running VM: full run, marker changed through QEMU, incremental run reads the change only, the image boots with it', async () => {
  await sms.importServerCatalog({});
  const servers = (await sms.getServers({})).serverList ?? [];
  const s = servers.find((x) => x.vmServer?.vmName === 'vm1');
  assert.ok(s, `vm1 catalogued: ${JSON.stringify(servers)}`);

  const { replicationJobId } = await sms.createReplicationJob({
    serverId: s.serverId!,
    seedReplicationTime: new Date(),
    frequency: 60,
  });
  const run1 = await waitForRun(sms, replicationJobId!, undefined, 300_000);
  assert.equal(run1.state, 'COMPLETED', run1.statusMessage);
  assert.match(run1.statusMessage ?? '', /full read/);
  // Image 1 is the disks as they were: the boot disk as built, the data disk as written.
  assert.equal(await sha256File(await exportDisk(run1.amiId!, 0)), await sha256File(bootRaw));
  assert.equal(await sha256File(await exportDisk(run1.amiId!, 1)), await sha256File(dataRaw));

  // Change the marker inside the running VM: the sectors set-marker.sh changes, written
  // through QEMU's block layer; and 1 MiB of the data disk.
  const old = await readFile(bootRaw);
  const changed = await withMarker(bootRaw, 'second');
  const writes: string[] = [];
  let changedBytes = 0;
  for (let o = 0; o < old.length; o += SECTOR) {
    if (old.subarray(o, o + SECTOR).equals(changed.subarray(o, o + SECTOR))) continue;
    const f = join(work, `sector-${o}.bin`);
    await writeFile(f, changed.subarray(o, o + SECTOR));
    writes.push(`qemu-io drive0 "write -s ${f} ${o} ${SECTOR}"`);
    changedBytes += SECTOR;
  }
  assert.ok(writes.length > 0 && writes.length < 64, `${writes.length} sectors change`);
  const data2 = Buffer.from(await readFile(dataRaw));
  pseudoRandom(1 << 20, 77).copy(data2, 4 << 20);
  const dataFile = join(work, 'data-change.bin');
  await writeFile(dataFile, data2.subarray(4 << 20, 5 << 20));
  writes.push(`qemu-io drive1 "write -s ${dataFile} ${4 << 20} ${1 << 20}"`);
  await hmp(writes);

  const { replicationRunId } = await sms.startOnDemandReplicationRun({ replicationJobId });
  const run2 = await waitForRun(sms, replicationJobId!, replicationRunId, 300_000);
  assert.equal(run2.state, 'COMPLETED', run2.statusMessage);
  const msg = run2.statusMessage ?? '';
  assert.match(msg, /incremental/, msg);
  const read = Number(/(\d+) bytes read from the source/.exec(msg)?.[1]);
  // Change tracking works at QEMU's bitmap granularity (64 KiB): each changed sector
  // costs at most one granule; the disks are 8+ MiB.
  assert.ok(read >= changedBytes + (1 << 20), `read ${read}`);
  assert.ok(
    read <= writes.length * 128 * 1024 + (1 << 20),
    `read ${read} bytes for ${changedBytes + (1 << 20)} changed`,
  );

  const boot2 = await exportDisk(run2.amiId!, 0);
  assert.ok((await readFile(boot2)).equals(changed), 'image 2 holds the disk as QEMU had it');
  assert.ok((await readFile(await exportDisk(run2.amiId!, 1))).equals(data2));
  const { stdout } = await run(
    'bash',
    [join(BOOT, 'boot-check.sh'), '--bus', 'virtio', '--expect', 'second', boot2, 'raw'],
    {
      timeout: 240_000,
    },
  );
  assert.match(stdout, /FERRY-BOOT-MARKER: second/);

  // Nothing of Ferry's is left in QEMU but the checkpoint bitmaps.
  const q = await QmpClient.connect({ path: join(qmpDir, 'vm1.qmp') }, { connectTimeoutMs: 30_000 });
  try {
    assert.deepEqual(await queryBlockExports(q), []);
    assert.deepEqual(await queryJobs(q), []);
    const nodes = await queryNamedBlockNodes(q);
    assert.deepEqual(
      nodes.filter((n) => n['node-name']?.startsWith('ferry-')),
      [],
    );
    for (const b of await queryBlock(q)) {
      const bitmaps = (b.inserted?.['dirty-bitmaps'] ?? [])
        .map((x) => x.name)
        .filter((n) => n?.startsWith('ferry-'));
      assert.ok(bitmaps.length <= 1, `${b.device}: ${bitmaps.join(', ')}`);
    }
  } finally {
    await q.close();
  }
});
