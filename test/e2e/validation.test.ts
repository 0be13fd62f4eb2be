/**
 * Launch validation end to end (issue: launch): two servers whose disks boot and print
 * different markers, launch order db (1) then web (2), Ferry checks on each (a console
 * pattern; a script against the instance) → both pass in order and GetAppValidationOutput
 * says so; a check that never passes on group 1 stops group 2 and says why; a validation
 * reported FAILED through NotifyAppValidationOutput stops the launch too.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SMS } from '@aws-sdk/client-sms';
import { ferry, tempDir } from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { smsClient } from '../helpers/sms.js';
import { replicate, settledLaunch } from '../helpers/apps.js';
import { bootTools } from '../helpers/boot.js';

const run = promisify(execFile);
const BOOT = bootTools();
let server: RunningServer;
let sms: SMS;
let env: NodeJS.ProcessEnv;
let appId: string;
let web: string;
let db: string;

before(async () => {
  const images = await tempDir('ferry-validation-e2e-');
  await mkdir(join(images, 'web'));
  await mkdir(join(images, 'db'));
  await run('bash', [join(BOOT, 'make-bootable.sh'), join(images, 'web', 'boot.raw'), 'web-ok'], {
    maxBuffer: 1 << 24,
  });
  await copyFile(join(images, 'web', 'boot.raw'), join(images, 'db', 'boot.raw'));
  await run('bash', [join(BOOT, 'set-marker.sh'), join(images, 'db', 'boot.raw'), 'db-ok', 'raw']);
  server = await startServer({ imagesDir: images, args: ['--frequency-unit', 'minutes'], timeoutMs: 60_000 });
  sms = smsClient(server);
  env = { FERRY_ENDPOINT: server.url, FERRY_ACCESS_KEY_FILE: join(server.dataDir, 'admin-credentials.json') };
  const servers = (await sms.getServers({})).serverList ?? [];
  const id = (name: string) => servers.find((s) => s.vmServer?.vmName === name)!.serverId!;
  [web, db] = [id('web'), id('db')];
  for (const serverId of [web, db]) await replicate(sms, serverId);
  const app = await sms.createApp({
    name: 'checked',
    serverGroups: [
      { name: 'frontend', serverList: [{ serverId: web }] },
      { name: 'database', serverList: [{ serverId: db }] },
    ],
  });
  appId = app.appSummary!.appId!;
  const groups = new Map(app.serverGroups!.map((g) => [g.name, g.serverGroupId!]));
  await sms.putAppLaunchConfiguration({
    appId,
    serverGroupLaunchConfigurations: [
      {
        serverGroupId: groups.get('frontend'),
        launchOrder: 2,
        serverLaunchConfigurations: [{ server: { serverId: web }, instanceType: 't3.micro' }],
      },
      {
        serverGroupId: groups.get('database'),
        launchOrder: 1,
        serverLaunchConfigurations: [{ server: { serverId: db }, instanceType: 't3.micro' }],
      },
    ],
  });
});

after(async () => {
  sms?.destroy();
  await server?.stop();
});

async function cli(args: string[]) {
  const r = await ferry(args, { env, timeoutMs: 120_000 });
  assert.equal(r.code, 0, `ferry ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const settle = () => settledLaunch(sms, appId);

/** QEMU processes of this server's data directory (pids). */
async function qemus() {
  const found: string[] = [];
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('qemu-system') && cmd.includes(server.dataDir)) found.push(pid);
  }
  return found;
}

/** Instance directories (overlays, sockets, console logs) under the server's data directory. */
const instanceDirs = () => readdir(join(server.dataDir, 'instances')).catch(() => [] as string[]);

/** After TerminateApp: no QEMU and no instance directory stay behind. */
async function nothingLeft() {
  for (let i = 0; i < 60 && ((await qemus()).length > 0 || (await instanceDirs()).length > 0); i++)
    await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(await qemus(), [], 'no QEMU process left');
  assert.deepEqual(await instanceDirs(), [], 'no overlay or instance directory left');
}

async function outputs() {
  const list = (await sms.getAppValidationOutput({ appId })).validationOutputList ?? [];
  return new Map(list.map((o) => [o.serverValidationOutput?.server?.serverId ?? o.validationId!, o]));
}

test('checks pass group by group in launch order and are reported', async (t) => {
  t.after(() => sms.terminateApp({ appId }).catch(() => undefined));
  await cli([
    'apps',
    'checks',
    appId,
    db,
    '--console',
    'FERRY-BOOT-MARKER: db-ok',
    '--script',
    'test -s "$FERRY_CONSOLE_LOG"',
    '--timeout',
    '240',
  ]);
  await cli(['apps', 'checks', appId, web, '--console', 'FERRY-BOOT-MARKER: web-ok', '--timeout', '240']);
  await sms.launchApp({ appId });
  const s = await settle();
  assert.equal(s.launchStatus, 'LAUNCHED', s.launchStatusMessage);
  const out = await outputs();
  const dbOut = out.get(db)!;
  const webOut = out.get(web)!;
  assert.equal(dbOut.status, 'SUCCEEDED', dbOut.statusMessage);
  assert.equal(webOut.status, 'SUCCEEDED', webOut.statusMessage);
  assert.match(dbOut.statusMessage!, /console matched.*the script passed/);
  assert.ok(dbOut.latestValidationTime! <= webOut.latestValidationTime!, 'group 1 validated before group 2');
  // Group 2 was launched only after group 1 passed.
  const listed = JSON.parse(await cli(['instances', 'list', '--data-dir', server.dataDir, '--json'])) as {
    serverId: string;
    createdAt: string;
    appId: string;
    state: string;
  }[];
  // (the tiny guest may power off after its marker: any state but terminated)
  const mine = listed.filter((i) => i.appId === appId && i.state !== 'terminated');
  const webUp = mine.find((i) => i.serverId === web)!;
  assert.ok(new Date(webUp.createdAt).getTime() >= dbOut.latestValidationTime!.getTime() - 1000);
  await sms.terminateApp({ appId });
});

test('a check that never passes stops the next group and says why; nothing of group 2 runs', async (t) => {
  t.after(() => sms.terminateApp({ appId }).catch(() => undefined));
  await cli([
    'apps',
    'checks',
    appId,
    db,
    '--console',
    'this never appears',
    '--timeout',
    '5',
    '--name',
    'db boot',
  ]);
  await sms.launchApp({ appId });
  const s = await settle();
  assert.equal(s.launchStatus, 'LAUNCH_FAILED');
  assert.match(
    s.launchStatusMessage!,
    /Validation of group .* failed: db boot of server .*console did not match \/this never appears\//,
  );
  const out = await outputs();
  assert.equal(out.get(db)!.status, 'FAILED');
  const listed = JSON.parse(await cli(['instances', 'list', '--data-dir', server.dataDir, '--json'])) as {
    appId: string;
    serverId: string;
    state: string;
  }[];
  assert.deepEqual(
    listed.filter((i) => i.appId === appId && i.state !== 'terminated').map((i) => i.serverId),
    [db],
    'group 2 was not launched',
  );
  assert.equal((await instanceDirs()).length, 1, "group 1's instance directory exists until TerminateApp");
  await sms.terminateApp({ appId });
  await nothingLeft();
  await cli(['apps', 'checks', appId, db, '--clear']);
});

test('a validation reported FAILED with NotifyAppValidationOutput stops the launch', async (t) => {
  t.after(() => sms.terminateApp({ appId }).catch(() => undefined));
  await sms.putAppValidationConfiguration({
    appId,
    serverGroupValidationConfigurations: [
      {
        serverGroupId: (await sms.getApp({ appId })).serverGroups!.find((g) => g.name === 'database')!
          .serverGroupId,
        serverValidationConfigurations: [
          { server: { serverId: db }, name: 'smoke', serverValidationStrategy: 'USERDATA' },
        ],
      },
    ],
  });
  const validationId = (await sms.getAppValidationConfiguration({ appId }))
    .serverGroupValidationConfigurations![0]!.serverValidationConfigurations![0]!.validationId!;
  await sms.notifyAppValidationOutput({
    appId,
    notificationContext: { validationId, status: 'FAILED', statusMessage: 'smoke test: HTTP 500' },
  });
  await sms.launchApp({ appId });
  const s = await settle();
  assert.equal(s.launchStatus, 'LAUNCH_FAILED');
  assert.match(
    s.launchStatusMessage!,
    /validation smoke of server .* was reported FAILED: smoke test: HTTP 500/,
  );
  await sms.terminateApp({ appId });
});
