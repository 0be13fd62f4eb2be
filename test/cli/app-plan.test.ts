/**
 * Ferry launch plans against a real `ferry server` (folder source, real QEMU on this
 * machine): `ferry apps launch --plan FILE` creates the app from VM names, configures and
 * launches it; `ferry apps plan` gives the plan back; a replay updates the app by name and
 * can start a test launch instead; hostile plans are refused with the member at fault.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SMS } from '@aws-sdk/client-sms';
import { makeImagesDir } from '../helpers/fixtures.js';
import { ferry, tempDir } from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { smsClient, waitForRun } from '../helpers/sms.js';

let server: RunningServer;
let sms: SMS;
let env: NodeJS.ProcessEnv;
let dir: string;

before(async () => {
  const images = await makeImagesDir(2, 1 << 20);
  server = await startServer({ imagesDir: images, args: ['--frequency-unit', 'minutes'] });
  sms = smsClient(server);
  env = { FERRY_ENDPOINT: server.url, FERRY_ACCESS_KEY_FILE: join(server.dataDir, 'admin-credentials.json') };
  dir = await tempDir('ferry-plan-');
  for (const s of (await sms.getServers({})).serverList ?? []) {
    const { replicationJobId } = await sms.createReplicationJob({
      serverId: s.serverId,
      seedReplicationTime: new Date(),
      frequency: 600,
    });
    assert.equal((await waitForRun(sms, replicationJobId!, undefined, 120_000)).state, 'COMPLETED');
  }
});

after(async () => {
  sms?.destroy();
  await server?.stop();
});

async function cli(args: string[], expectOk = true) {
  const r = await ferry(args, { env, timeoutMs: 180_000 });
  if (expectOk) assert.equal(r.code, 0, `ferry ${args.join(' ')}: ${r.stderr}`);
  return r;
}

const plan = (instanceType: string) => ({
  ferryLaunchPlan: 1,
  name: 'planned',
  groups: [
    { name: 'db', launchOrder: 1, servers: [{ vmName: 'vm02', logicalId: 'Db', instanceType }] },
    { name: 'web', launchOrder: 2, servers: [{ vmName: 'vm01', logicalId: 'Web', instanceType }] },
  ],
});

test('a plan by VM names creates, configures and launches the app; plan gives it back; replays update it', async () => {
  const file = join(dir, 'plan.json');
  await writeFile(file, JSON.stringify(plan('t3.nano')));
  const r = await cli(['apps', 'launch', '--plan', file, '--wait']);
  assert.match(r.stdout, /LAUNCHED/);
  const apps = (await sms.listApps({})).apps ?? [];
  assert.equal(apps.length, 1);
  const appId = apps[0]!.appId!;
  assert.equal(apps[0]!.launchStatus, 'LAUNCHED');

  const back = JSON.parse((await cli(['apps', 'plan', appId])).stdout) as ReturnType<typeof plan>;
  const ids = new Map(
    ((await sms.getServers({})).serverList ?? []).map((s) => [s.vmServer!.vmName!, s.serverId!]),
  );
  assert.deepEqual(
    back.groups.map((g) => [
      g.name,
      g.launchOrder,
      g.servers.map((s) => [s.vmName, s.logicalId, s.instanceType]),
    ]),
    [
      ['db', 1, [['vm02', 'Db', 't3.nano']]],
      ['web', 2, [['vm01', 'Web', 't3.nano']]],
    ],
  );
  assert.equal((back.groups[0]!.servers[0] as { serverId?: string }).serverId, ids.get('vm02'));

  // Replayed with another instance type as a test launch: the same app (by name), updated.
  await sms.terminateApp({ appId });
  await writeFile(file, JSON.stringify(plan('t3.micro')));
  const t = await cli(['apps', 'launch', '--plan', file, '--test', '--wait']);
  assert.match(t.stdout, /TEST_IN_PROGRESS/);
  assert.equal((await sms.listApps({})).apps?.length, 1);
  const lc = await sms.getAppLaunchConfiguration({ appId });
  assert.deepEqual(
    lc.serverGroupLaunchConfigurations?.flatMap((g) =>
      g.serverLaunchConfigurations?.map((s) => s.instanceType),
    ),
    ['t3.micro', 't3.micro'],
  );
  await cli(['apps', 'revert', appId]);
});

test('hostile or broken plans are refused with the member at fault; nothing is created', async () => {
  const cases: [unknown, RegExp][] = [
    ['not json', /is not JSON/],
    [{ ...plan('t3.nano'), ferryLaunchPlan: 2 }, /ferryLaunchPlan must be 1/],
    [{ ...plan('t3.nano'), groups: [] }, /groups must list/],
    [
      { ...plan('t3.nano'), groups: [{ name: 'x', servers: [{ logicalId: 'X' }] }] },
      /needs a serverId or a vmName/,
    ],
    [
      { ...plan('t3.nano'), groups: [{ name: 'x', servers: [{ vmName: 'vm01', rm: '-rf' }] }] },
      /rm is not a plan member/,
    ],
    [{ ...plan('t3.nano'), groups: [{ name: 'x', launchOrder: -1, servers: [] }] }, /launchOrder must be/],
    [
      { ...plan('t3.nano'), name: 'other', groups: [{ name: 'x', servers: [{ vmName: 'nope' }] }] },
      /not in this server's catalog/,
    ],
  ];
  for (const [content, message] of cases) {
    const file = join(dir, 'bad.json');
    await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
    const r = await cli(['apps', 'launch', '--plan', file], false);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /FERRY_(INVALID_ARGUMENT|NOT_FOUND)/);
    assert.match(r.stderr, message);
  }
  const big = join(dir, 'big.json');
  await writeFile(big, Buffer.alloc(2 * 1024 * 1024, 0x20));
  assert.match((await cli(['apps', 'launch', '--plan', big], false)).stderr, /at most 1048576 bytes/);
  assert.equal((await sms.listApps({})).apps?.filter((a) => a.name === 'other').length, 0);
});
