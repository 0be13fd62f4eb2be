/**
 * User data and configure scripts through a real `ferry server`: uploaded to the local
 * bucket with `ferry objects put`, named by S3 location in PutAppLaunchConfiguration,
 * delivered to the instance as a NoCloud seed ISO that QEMU attaches; a missing object
 * refuses the launch at once; terminate removes the seed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SMS } from '@aws-sdk/client-sms';
import { makeImagesDir } from '../helpers/fixtures.js';
import { ferry, tempDir } from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { smsClient } from '../helpers/sms.js';
import { replicate, settledLaunch } from '../helpers/apps.js';

const run = promisify(execFile);
let server: RunningServer;
let sms: SMS;
let env: NodeJS.ProcessEnv;

before(async () => {
  server = await startServer({
    imagesDir: await makeImagesDir(1, 1 << 20),
    args: ['--frequency-unit', 'minutes'],
  });
  sms = smsClient(server);
  env = { FERRY_ENDPOINT: server.url, FERRY_ACCESS_KEY_FILE: join(server.dataDir, 'admin-credentials.json') };
});

after(async () => {
  sms?.destroy();
  await server?.stop();
});

test('user data + configure script reach the instance as a cidata seed; missing objects refuse the launch', async () => {
  const dir = await tempDir('ferry-userdata-');
  await writeFile(join(dir, 'ud.yaml'), '#cloud-config\nruncmd: [touch /ferry-was-here]\n');
  await writeFile(join(dir, 'configure.sh'), 'echo configured > /var/tmp/ferry\n');
  for (const [key, file] of [
    ['shop/user-data.yaml', 'ud.yaml'],
    ['shop/configure.sh', 'configure.sh'],
  ] as const) {
    const r = await ferry(['objects', 'put', key, join(dir, file)], { env });
    assert.equal(r.code, 0, r.stderr);
  }
  const listed = await ferry(['objects', 'list', 'shop/', '--json'], { env });
  assert.deepEqual(
    (JSON.parse(listed.stdout) as { key: string }[]).map((o) => o.key),
    ['shop/configure.sh', 'shop/user-data.yaml'],
  );
  const bad = await ferry(['objects', 'put', '../escape', join(dir, 'ud.yaml')], { env });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /FERRY_INVALID_ARGUMENT/);

  const serverId = (await sms.getServers({})).serverList![0]!.serverId!;
  await replicate(sms, serverId, 120_000);
  const app = await sms.createApp({
    name: 'seeded',
    serverGroups: [{ name: 'g', serverList: [{ serverId }] }],
  });
  const appId = app.appSummary!.appId!;
  const configure = (userDataKey: string) =>
    sms.putAppLaunchConfiguration({
      appId,
      serverGroupLaunchConfigurations: [
        {
          serverGroupId: app.serverGroups![0]!.serverGroupId,
          launchOrder: 1,
          serverLaunchConfigurations: [
            {
              server: { serverId },
              instanceType: 't3.nano',
              userData: { s3Location: { bucket: 'ferry-local', key: userDataKey } },
              configureScript: { bucket: 'ferry-local', key: 'shop/configure.sh' },
              configureScriptType: 'SHELL_SCRIPT',
            },
          ],
        },
      ],
    });

  await configure('shop/missing.yaml');
  await assert.rejects(
    sms.launchApp({ appId }),
    (e: Error) => e.name === 'InvalidParameterException' && /no object/.test(e.message),
  );

  await configure('shop/user-data.yaml');
  await sms.launchApp({ appId });
  assert.equal((await settledLaunch(sms, appId)).launchStatus, 'LAUNCHED');
  const instanceId = (await sms.getApp({ appId })).appSummary!.launchDetails!.stackId!;
  const idir = join(server.dataDir, 'instances', instanceId);
  const iso = join(idir, 'seed.iso');
  assert.match((await run('isoinfo', ['-d', '-i', iso], { encoding: 'utf8' })).stdout, /Volume id: cidata/);
  const ud = (await run('isoinfo', ['-R', '-i', iso, '-x', '/user-data'], { encoding: 'utf8' })).stdout;
  assert.match(ud, /text\/cloud-config[\s\S]*touch \/ferry-was-here/);
  assert.match(ud, /text\/x-shellscript[\s\S]*#!\/bin\/sh\necho configured/);
  const meta = (await run('isoinfo', ['-R', '-i', iso, '-x', '/meta-data'], { encoding: 'utf8' })).stdout;
  assert.match(meta, new RegExp(`instance-id: ${instanceId}`));
  const pid = Number((await readFile(join(idir, 'qemu.pid'), 'utf8')).trim());
  assert.ok((await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes(iso), 'QEMU attached the seed');

  await sms.terminateApp({ appId });
  await assert.rejects(stat(iso));
});
