/**
 * Test instances outlive a restart of `ferry server` (docs/launch.md, "Server restarts"):
 * a real server launches a test instance of a boot image; the server is stopped (SIGTERM)
 * or killed (SIGKILL) and started again on the same data directory; QEMU runs on, the new
 * server lists it running, its console comes through the API, and a guest reboot (QMP
 * system_reset) reads the whole boot path again — kernel, initramfs, marker — through the
 * new server's NBD export (QEMU caches nothing: the marker appearing again proves it). A
 * reboot started while the server is down waits for it (reconnect-delay). A stopped test
 * instance stays stopped and boots again through the new server. When the image is
 * deleted meanwhile, the next server terminates the instance and leaves nothing.
 *
 * The boot image is made with `acpi=off`: its guest prints the marker and halts instead of
 * powering off, so QEMU keeps running for the restarts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SMS } from '@aws-sdk/client-sms';
import { bootTools } from '../helpers/boot.js';
import { ferry, tempDir } from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { smsClient } from '../helpers/sms.js';
import { ferryOk, oneServerApp, replicate } from '../helpers/apps.js';
import { qmp } from '../helpers/kvm-connector.js';
import { alive, missing } from '../helpers/leftovers.js';

const run = promisify(execFile);
const MARKER = 'FERRY-BOOT-MARKER: restart';

let images: string;
let server: RunningServer | undefined;
let sms: SMS | undefined;
let dataDir: string;
let instanceId: string;
let dir: string;
let pid: number;
let imageId: string;

async function start(): Promise<void> {
  server = await startServer({
    dataDir,
    imagesDir: images,
    args: ['--frequency-unit', 'minutes'],
    timeoutMs: 60_000,
  });
  sms = smsClient(server);
}

async function stop(signal: NodeJS.Signals): Promise<number | null> {
  sms?.destroy();
  sms = undefined;
  return server!.stop(signal);
}

interface Listed {
  instanceId: string;
  imageId: string;
  state: string;
  statusMessage: string;
}

async function listed(): Promise<Listed> {
  const all = JSON.parse(
    await ferryOk(server!, ['instances', 'list', '--data-dir', dataDir, '--json']),
  ) as Listed[];
  return all.find((i) => i.instanceId === instanceId)!;
}

/** How many times the guest printed its marker, read through the server's API. */
async function markers(): Promise<number> {
  return (await ferryOk(server!, ['instances', 'console', instanceId])).split(MARKER).length - 1;
}

async function waitMarkers(n: number, timeoutMs = 300_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if ((await markers()) >= n) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const text = await ferryOk(server!, ['instances', 'console', instanceId]);
  assert.fail(`the guest did not print its marker ${n} time(s); console:\n${text.slice(-3000)}`);
}

/** A guest reboot: SeaBIOS, syslinux and the kernel read their files from the disk again. */
async function reboot(): Promise<void> {
  await qmp(join(dir, 'qmp.sock'), (q) => q.execute('system_reset'));
}

before(async () => {
  images = await tempDir('ferry-restart-e2e-');
  await mkdir(join(images, 'vm'));
  await run('bash', [join(bootTools(), 'make-bootable.sh'), join(images, 'vm', 'boot.raw'), 'restart'], {
    maxBuffer: 1 << 24,
    env: { ...process.env, FERRY_KERNEL_APPEND: 'acpi=off' },
  });
  dataDir = join(await tempDir('ferry-restart-data-'), 'data');
  await start();
});

after(async () => {
  sms?.destroy();
  await server?.stop();
  // Whatever a failed step left: only this test's QEMU, by its verified pid file.
  if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
});

test('a test instance keeps running across a clean server restart and reads through the new server', async () => {
  const serverId = (await sms!.getServers({})).serverList![0]!.serverId!;
  await replicate(sms!, serverId, 180_000);
  const appId = await oneServerApp(sms!, 'restart', serverId);
  await ferryOk(server!, ['apps', 'test', appId, '--wait']);
  const l = JSON.parse(await ferryOk(server!, ['apps', 'lifecycle', appId, '--json'])) as {
    state: string;
    servers: { instanceId: string }[];
  };
  assert.equal(l.state, 'TEST_IN_PROGRESS');
  instanceId = l.servers[0]!.instanceId;
  dir = join(dataDir, 'instances', instanceId);
  pid = Number((await readFile(join(dir, 'qemu.pid'), 'utf8')).trim());
  imageId = (await listed()).imageId;
  await waitMarkers(1);

  assert.equal(await stop('SIGTERM'), 0);
  assert.ok(alive(pid), 'the test instance outlived the server');
  assert.ok(await missing(join(dir, 'nbd.sock')), 'its image export closed with the server');

  await start();
  const mine = await listed();
  assert.equal(mine.state, 'running');
  assert.match(mine.statusMessage, /served again/);
  assert.ok(alive(pid), 'adopting did not restart it');
  assert.equal(await markers(), 1, 'the console comes through the new server');

  await reboot();
  await waitMarkers(2);
});

test('after a crash, a reboot begun while no server runs waits for the next one', async () => {
  assert.equal(await stop('SIGKILL'), null);
  assert.ok(alive(pid));
  // The guest's reads stall now (no server); they go on once the next server serves the image.
  await reboot();
  await new Promise((r) => setTimeout(r, 2000));
  await start();
  assert.equal((await listed()).state, 'running');
  assert.ok(alive(pid));
  await waitMarkers(3);
});

test('a stopped test instance stays stopped across a restart and boots again through the new server', async () => {
  assert.match(await ferryOk(server!, ['instances', 'stop', instanceId]), /stopped/);
  assert.ok(!alive(pid));
  assert.equal(await stop('SIGTERM'), 0);
  assert.ok(await missing(join(dir, 'nbd.sock')));
  await start();
  const mine = await listed();
  assert.equal(mine.state, 'stopped');
  assert.match(mine.statusMessage, /served again/);
  assert.match(await ferryOk(server!, ['instances', 'start', instanceId]), /running/);
  pid = Number((await readFile(join(dir, 'qemu.pid'), 'utf8')).trim());
  assert.ok(alive(pid));
  // A fresh QEMU: every read of this boot goes through the new server's export.
  await waitMarkers(4);
});

test('an instance whose image was deleted while the server was down is terminated; nothing is left', async () => {
  assert.equal(await stop('SIGTERM'), 0);
  assert.ok(alive(pid));
  const r = await ferry(['images', 'delete', '--data-dir', dataDir, imageId]);
  assert.equal(r.code, 0, r.stderr);
  await start();
  const mine = await listed();
  assert.equal(mine.state, 'terminated');
  assert.match(mine.statusMessage, new RegExp(`image ${imageId}`));
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((res) => setTimeout(res, 100));
  assert.ok(!alive(pid), 'its QEMU was killed');
  assert.ok(await missing(dir), 'its directory (overlay included) was removed');
});
