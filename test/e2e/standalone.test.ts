/**
 * Cutover instances outlive the server: after a cutover through a real `ferry server`
 * their images are streamed in (standalone), so stopping the server leaves them running,
 * and the next server on the same data directory adopts them — stop, start, finalize and
 * terminate work on them, and terminate leaves nothing behind.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { makeImagesDir } from '../helpers/fixtures.js';
import { ferry } from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { smsClient, waitForRun } from '../helpers/sms.js';
import { alive } from '../helpers/leftovers.js';

let server: RunningServer | undefined;
after(async () => {
  await server?.stop();
});

test('standalone cutover instances keep running across a server restart and are adopted', async () => {
  const images = await makeImagesDir(1, 4 << 20);
  server = await startServer({ imagesDir: images, args: ['--frequency-unit', 'minutes'] });
  const dataDir = server.dataDir;
  const env = () => ({
    FERRY_ENDPOINT: server!.url,
    FERRY_ACCESS_KEY_FILE: join(dataDir, 'admin-credentials.json'),
  });
  const cli = async (args: string[]) => {
    const r = await ferry(args, { env: env(), timeoutMs: 300_000 });
    assert.equal(r.code, 0, `ferry ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  let sms = smsClient(server);
  const serverId = (await sms.getServers({})).serverList![0]!.serverId!;
  const { replicationJobId } = await sms.createReplicationJob({
    serverId,
    seedReplicationTime: new Date(),
    frequency: 600,
  });
  assert.equal((await waitForRun(sms, replicationJobId!, undefined, 120_000)).state, 'COMPLETED');
  const app = await sms.createApp({
    name: 'prod',
    serverGroups: [{ name: 'g', serverList: [{ serverId }] }],
  });
  const appId = app.appSummary!.appId!;
  await sms.putAppLaunchConfiguration({
    appId,
    serverGroupLaunchConfigurations: [
      {
        serverGroupId: app.serverGroups![0]!.serverGroupId,
        launchOrder: 1,
        serverLaunchConfigurations: [{ server: { serverId }, instanceType: 't3.nano' }],
      },
    ],
  });
  await cli(['apps', 'test', appId, '--wait']);
  await cli(['apps', 'ready', appId]);
  await cli(['apps', 'cutover', appId, '--wait', '--no-final-replication']);
  const l = JSON.parse(await cli(['apps', 'lifecycle', appId, '--json'])) as {
    state: string;
    servers: { instanceId: string; standalone?: boolean }[];
  };
  assert.equal(l.state, 'CUTOVER_COMPLETE');
  assert.equal(l.servers[0]!.standalone, true);
  const instanceId = l.servers[0]!.instanceId;
  const dir = join(dataDir, 'instances', instanceId);
  const pid = Number((await readFile(join(dir, 'qemu.pid'), 'utf8')).trim());

  sms.destroy();
  assert.equal(await server.stop(), 0);
  assert.ok(alive(pid), 'the standalone instance outlived the server');

  server = await startServer({ dataDir, imagesDir: images, args: ['--frequency-unit', 'minutes'] });
  sms = smsClient(server);
  const listed = JSON.parse(await cli(['instances', 'list', '--data-dir', dataDir, '--json'])) as {
    instanceId: string;
    state: string;
    statusMessage: string;
  }[];
  const mine = listed.find((i) => i.instanceId === instanceId)!;
  assert.equal(mine.state, 'running');
  assert.match(mine.statusMessage, /adopted/);
  assert.ok(alive(pid), 'adopting did not restart it');

  assert.match(await cli(['instances', 'stop', instanceId]), /stopped/);
  assert.ok(!alive(pid));
  assert.match(await cli(['instances', 'start', instanceId]), /running/);
  const pid2 = Number((await readFile(join(dir, 'qemu.pid'), 'utf8')).trim());
  assert.ok(alive(pid2));

  await cli(['apps', 'finalize', appId]);
  await sms.terminateApp({ appId });
  assert.ok(!alive(pid2));
  await assert.rejects(stat(dir), 'the instance directory is gone');
  sms.destroy();
});
