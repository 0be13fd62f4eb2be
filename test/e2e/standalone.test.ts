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
import { startServer, type RunningServer } from '../helpers/server.js';
import { smsClient } from '../helpers/sms.js';
import { ferryOk, oneServerApp, replicate } from '../helpers/apps.js';
import { alive } from '../helpers/leftovers.js';

let server: RunningServer | undefined;
after(async () => {
  await server?.stop();
});

test('standalone cutover instances keep running across a server restart and are adopted', async () => {
  const images = await makeImagesDir(1, 4 << 20);
  server = await startServer({ imagesDir: images, args: ['--frequency-unit', 'minutes'] });
  const dataDir = server.dataDir;
  const cli = (args: string[]) => ferryOk(server!, args);
  let sms = smsClient(server);
  const serverId = (await sms.getServers({})).serverList![0]!.serverId!;
  await replicate(sms, serverId, 120_000);
  const appId = await oneServerApp(sms, 'prod', serverId);
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
