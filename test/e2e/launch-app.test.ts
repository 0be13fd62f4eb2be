/**
 * End to end, launching an application (issue: launch): two servers whose disks are
 * bootable images with different markers (../shared/tools/boot) → replicated into images
 * → an app with two server groups in launch order → LaunchApp on the server's own machine
 * → GetApp shows LAUNCHED with the instance ids → `ferry instances list/console` show both
 * instances booting their own image → TerminateApp stops them and removes their files.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SMS } from '@aws-sdk/client-sms';
import { ferry, tempDir } from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { smsClient, waitForRun } from '../helpers/sms.js';
import { bootTools } from '../helpers/boot.js';

const run = promisify(execFile);
const BOOT = bootTools();

let server: RunningServer | undefined;
let sms: SMS;

before(async () => {
  const images = await tempDir('ferry-launch-e2e-');
  const first = join(images, 'web');
  const second = join(images, 'db');
  await mkdir(first);
  await mkdir(second);
  await run('bash', [join(BOOT, 'make-bootable.sh'), join(first, 'boot.raw'), 'one'], { maxBuffer: 1 << 24 });
  await copyFile(join(first, 'boot.raw'), join(second, 'boot.raw'));
  await run('bash', [join(BOOT, 'set-marker.sh'), join(second, 'boot.raw'), 'two', 'raw']);
  server = await startServer({ imagesDir: images, args: ['--frequency-unit', 'minutes'], timeoutMs: 60_000 });
  sms = smsClient(server);
});

after(async () => {
  sms?.destroy();
  await server?.stop();
});

interface Listed {
  instanceId: string;
  appId: string;
  serverId: string;
  imageId: string;
  state: string;
  createdAt: string;
}

async function instances(): Promise<Listed[]> {
  const r = await ferry(['instances', 'list', '--data-dir', server!.dataDir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Listed[];
}

async function waitForConsole(id: string, marker: string, timeoutMs = 240_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < until) {
    const r = await ferry(['instances', 'console', id, '--data-dir', server!.dataDir]);
    assert.equal(r.code, 0, r.stderr);
    text = r.stdout;
    if (text.includes(`FERRY-BOOT-MARKER: ${marker}`)) return;
    await new Promise((res) => setTimeout(res, 1000));
  }
  assert.fail(`instance ${id} did not print its marker; console so far:\n${text.slice(-2000)}`);
}

test('LaunchApp boots each server from its image in launch order; TerminateApp leaves nothing', async () => {
  const servers = (await sms.getServers({})).serverList ?? [];
  const byName = new Map(servers.map((s) => [s.vmServer?.vmName, s.serverId!]));
  const web = byName.get('web')!;
  const db = byName.get('db')!;
  const images = new Map<string, string>();
  for (const serverId of [web, db]) {
    const { replicationJobId } = await sms.createReplicationJob({
      serverId,
      seedReplicationTime: new Date(),
      frequency: 600,
    });
    const r = await waitForRun(sms, replicationJobId!, undefined, 180_000);
    assert.equal(r.state, 'COMPLETED', r.statusMessage);
    images.set(serverId, r.amiId!);
  }

  const app = await sms.createApp({
    name: 'shop',
    serverGroups: [
      { name: 'frontend', serverList: [{ serverId: web }] },
      { name: 'database', serverList: [{ serverId: db }] },
    ],
  });
  const appId = app.appSummary!.appId!;
  const groups = new Map(app.serverGroups!.map((g) => [g.name, g.serverGroupId!]));
  await sms.putAppLaunchConfiguration({
    appId,
    serverGroupLaunchConfigurations: [
      // The database first: launch order, not the order of the groups, decides.
      {
        serverGroupId: groups.get('frontend'),
        launchOrder: 2,
        serverLaunchConfigurations: [
          { server: { serverId: web }, logicalId: 'Web', instanceType: 't3.micro' },
        ],
      },
      {
        serverGroupId: groups.get('database'),
        launchOrder: 1,
        serverLaunchConfigurations: [{ server: { serverId: db }, logicalId: 'Db', instanceType: 't3.micro' }],
      },
    ],
  });
  await sms.launchApp({ appId });
  let summary = (await sms.getApp({ appId })).appSummary!;
  for (
    let i = 0;
    i < 240 && !['LAUNCHED', 'LAUNCH_FAILED', 'PARTIALLY_LAUNCHED'].includes(summary.launchStatus!);
    i++
  ) {
    await new Promise((r) => setTimeout(r, 500));
    summary = (await sms.getApp({ appId })).appSummary!;
  }
  assert.equal(summary.launchStatus, 'LAUNCHED', summary.launchStatusMessage);

  const list = (await instances()).filter((i) => i.appId === appId);
  assert.equal(list.length, 2);
  const [firstUp, secondUp] = [...list].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  assert.equal(firstUp!.serverId, db, 'launch order 1 first');
  assert.equal(secondUp!.serverId, web);
  for (const i of list) {
    assert.equal(i.state, 'running');
    assert.equal(i.imageId, images.get(i.serverId), 'each instance boots its server image');
  }
  assert.deepEqual(summary.launchDetails?.stackId?.split(',').sort(), list.map((i) => i.instanceId).sort());
  await waitForConsole(firstUp!.instanceId, 'two');
  await waitForConsole(secondUp!.instanceId, 'one');

  // One instance stopped and started again: a second boot of the same overlay; the other runs on.
  const env = {
    FERRY_ENDPOINT: server!.url,
    FERRY_ACCESS_KEY_FILE: join(server!.dataDir, 'admin-credentials.json'),
  };
  const boots = async (id: string) =>
    (await ferry(['instances', 'console', id, '--data-dir', server!.dataDir])).stdout.split(
      'FERRY-BOOT-MARKER: two',
    ).length - 1;
  const before = await boots(firstUp!.instanceId);
  let r = await ferry(['instances', 'stop', firstUp!.instanceId, '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { state: string }[])[0]!.state, 'stopped');
  assert.equal((await instances()).find((i) => i.instanceId === firstUp!.instanceId)!.state, 'stopped');
  r = await ferry(['instances', 'start', firstUp!.instanceId], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /running/);
  for (let i = 0; i < 240 && (await boots(firstUp!.instanceId)) <= before; i++)
    await new Promise((res) => setTimeout(res, 1000));
  assert.ok((await boots(firstUp!.instanceId)) > before, 'the restarted instance booted again');
  r = await ferry(['instances', 'start', 'i-00000000000000000'], { env });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /FERRY_INVALID_ARGUMENT|no instance/);

  await sms.terminateApp({ appId });
  summary = (await sms.getApp({ appId })).appSummary!;
  assert.equal(summary.launchStatus, 'TERMINATED', summary.launchStatusMessage);
  for (const i of (await instances()).filter((x) => x.appId === appId)) {
    assert.equal(i.state, 'terminated');
    await assert.rejects(stat(join(server!.dataDir, 'instances', i.instanceId, 'overlay-0.qcow2')));
  }
  const { stdout } = await run('ps', ['-eo', 'args']);
  assert.ok(!stdout.includes(join(server!.dataDir, 'instances')), 'no QEMU of the app is left');
});
