/**
 * End to end, the migration lifecycle (issue: launch) through a real `ferry server` and the
 * `ferry apps` client: two servers whose disks boot and print different markers
 * (../shared/tools/boot) → replicated → an app with launch order db (1) then web (2) →
 * test launch (both boot, in order) → revert → test again → ready for cutover → the source
 * changes → cutover with a final replication run (the web instance prints the NEW marker)
 * → finalize (replication stops) → the generated template references both, in order.
 * A webhook receiver on loopback (created with `ferry webhooks create`) gets every event of
 * the log, each once, signed, and the lifecycle events in the order the app went through.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SMS } from '@aws-sdk/client-sms';
import { ferry, tempDir } from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { smsClient, waitForRun } from '../helpers/sms.js';
import { bootTools } from '../helpers/boot.js';
import { webhookReceiver, type Receiver } from '../helpers/webhook-receiver.js';
import { verifySignature } from '../../src/control/index.js';

const run = promisify(execFile);
const BOOT = bootTools();

let server: RunningServer | undefined;
let sms: SMS;
let images: string;
let env: NodeJS.ProcessEnv;
let receiver: Receiver;
let signingSecret: string;

before(async () => {
  images = await tempDir('ferry-lifecycle-e2e-');
  await mkdir(join(images, 'web'));
  await mkdir(join(images, 'db'));
  await run('bash', [join(BOOT, 'make-bootable.sh'), join(images, 'web', 'boot.raw'), 'web-v1'], {
    maxBuffer: 1 << 24,
  });
  await copyFile(join(images, 'web', 'boot.raw'), join(images, 'db', 'boot.raw'));
  await run('bash', [join(BOOT, 'set-marker.sh'), join(images, 'db', 'boot.raw'), 'db-v1', 'raw']);
  server = await startServer({ imagesDir: images, args: ['--frequency-unit', 'minutes'], timeoutMs: 60_000 });
  sms = smsClient(server);
  env = { FERRY_ENDPOINT: server.url, FERRY_ACCESS_KEY_FILE: join(server.dataDir, 'admin-credentials.json') };
  receiver = await webhookReceiver();
  const r = await ferry(['webhooks', 'create', receiver.url, '--name', 'e2e', '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  signingSecret = (JSON.parse(r.stdout) as { signingSecret: string }).signingSecret;
});

after(async () => {
  sms?.destroy();
  await server?.stop();
  await receiver?.close();
});

async function apps(args: string[], timeoutMs = 300_000) {
  const r = await ferry(['apps', ...args], { env, timeoutMs });
  assert.equal(r.code, 0, `ferry apps ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

interface Lifecycle {
  state: string;
  statusMessage: string;
  servers: { serverId: string; latestImageId?: string; instanceId?: string; instanceState?: string }[];
  cutover?: { finalReplicationMs?: number; launchMs?: number; totalMs?: number };
}

async function lifecycle(appId: string): Promise<Lifecycle> {
  return JSON.parse(await apps(['lifecycle', appId, '--json'])) as Lifecycle;
}

async function waitForMarker(instanceId: string, marker: string, timeoutMs = 240_000): Promise<number> {
  const until = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < until) {
    const r = await ferry(['instances', 'console', instanceId, '--data-dir', server!.dataDir]);
    text = r.stdout;
    if (text.includes(`FERRY-BOOT-MARKER: ${marker}`)) return Date.now();
    await new Promise((res) => setTimeout(res, 500));
  }
  return assert.fail(`instance ${instanceId} did not print ${marker}; console:\n${text.slice(-2000)}`);
}

test('test → revert → test → ready → cutover with a final run → finalize; template in launch order', async () => {
  const servers = (await sms.getServers({})).serverList ?? [];
  const id = (name: string) => servers.find((s) => s.vmServer?.vmName === name)!.serverId!;
  const [web, db] = [id('web'), id('db')];
  const jobs = new Map<string, string>();
  for (const serverId of [web, db]) {
    const { replicationJobId } = await sms.createReplicationJob({
      serverId,
      seedReplicationTime: new Date(),
      frequency: 600,
    });
    const r = await waitForRun(sms, replicationJobId!, undefined, 180_000);
    assert.equal(r.state, 'COMPLETED', r.statusMessage);
    jobs.set(serverId, replicationJobId!);
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
  assert.equal((await lifecycle(appId)).state, 'READY_FOR_TESTING');

  // Test launch: both boot their tested image.
  assert.match(await apps(['test', appId, '--wait']), /TEST_IN_PROGRESS\s+Test instances running/);
  let l = await lifecycle(appId);
  const testInstance = (serverId: string) => l.servers.find((s) => s.serverId === serverId)!.instanceId!;
  await waitForMarker(testInstance(db), 'db-v1');
  await waitForMarker(testInstance(web), 'web-v1');

  await apps(['revert', appId]);
  l = await lifecycle(appId);
  assert.equal(l.state, 'READY_FOR_TESTING');
  assert.ok(
    l.servers.every((s) => s.instanceId === undefined),
    'test instances terminated',
  );

  await apps(['test', appId, '--wait']);
  await apps(['ready', appId]);
  assert.equal((await lifecycle(appId)).state, 'READY_FOR_CUTOVER');

  // The source changes after testing; the cutover's final run carries the change.
  await run('bash', [join(BOOT, 'set-marker.sh'), join(images, 'web', 'boot.raw'), 'web-v2', 'raw']);
  const out = await apps(['cutover', appId, '--wait'], 600_000);
  assert.match(out, /Final replication/, 'progress of the final run is shown');
  assert.match(out, /CUTOVER_COMPLETE\s+Cutover complete/);
  l = await lifecycle(appId);
  assert.equal(l.state, 'CUTOVER_COMPLETE');
  assert.ok(l.cutover?.totalMs !== undefined && l.cutover.finalReplicationMs !== undefined);
  const dbUp = await waitForMarker(l.servers.find((s) => s.serverId === db)!.instanceId!, 'db-v1');
  const webUp = await waitForMarker(l.servers.find((s) => s.serverId === web)!.instanceId!, 'web-v2');
  assert.ok(dbUp > 0 && webUp > 0);

  await apps(['finalize', appId]);
  assert.equal((await lifecycle(appId)).state, 'FINALIZED');
  for (const jobId of jobs.values()) {
    const found = (await sms.getReplicationJobs({ replicationJobId: jobId }).catch(() => undefined))
      ?.replicationJobList?.[0];
    assert.ok(!found || ['DELETING', 'DELETED'].includes(found.state!), `job ${jobId} stopped`);
  }

  const template = JSON.parse(await apps(['template', appId])) as {
    Parameters: Record<string, { Default?: string }>;
    Resources: Record<string, { DependsOn?: string[]; Properties: { ImageId: { Ref: string } } }>;
  };
  assert.deepEqual(Object.keys(template.Resources).sort(), ['Db', 'Web']);
  assert.deepEqual(template.Resources.Web!.DependsOn, ['Db'], 'launch order via DependsOn');
  assert.equal(template.Resources.Db!.DependsOn, undefined);
  assert.equal(
    template.Parameters[template.Resources.Web!.Properties.ImageId.Ref]?.Default,
    l.servers.find((s) => s.serverId === web)!.latestImageId,
  );
  assert.match(await apps(['template', appId, '--yaml']), /^AWSTemplateFormatVersion: /m);

  await sms.terminateApp({ appId });

  // Every event of the log reached the webhook, once, signed; the lifecycle in order.
  const logged = async () => {
    const r = await ferry(['events', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { eventId: string; detailType: string; detail: Record<string, unknown> }[];
  };
  // TerminateApp above goes on in the background (more events): let it end, then wait until
  // the log and what arrived agree.
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const status = (await sms.getApp({ appId })).appSummary?.launchStatus;
    if (status !== 'TERMINATE_IN_PROGRESS') break;
    await new Promise((res) => setTimeout(res, 250));
  }
  const delivered = () => new Set(receiver.hits.map((h) => String(h.headers['ferry-event-id'])));
  let log = await logged();
  while (Date.now() < until) {
    const got = delivered();
    if (log.length === got.size && log.every((e) => got.has(e.eventId))) break;
    await new Promise((res) => setTimeout(res, 250));
    log = await logged();
  }
  const received = receiver.hits.map((h) => {
    assert.ok(verifySignature(signingSecret, h.headers['ferry-signature'] as string, h.body), 'signed');
    return JSON.parse(h.body) as { id: string; 'detail-type': string; detail: Record<string, unknown> };
  });
  const ids = received.map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length, 'no event delivered twice');
  assert.deepEqual(new Set(ids), new Set(log.map((e) => e.eventId)), 'every logged event delivered');
  const states = (type: string, field: string) =>
    received
      .filter((e) => e['detail-type'] === type && e.detail.appId === appId)
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((e) => e.detail[field]);
  assert.deepEqual(states('App Lifecycle State Change', 'state'), [
    'TEST_IN_PROGRESS',
    'READY_FOR_TESTING',
    'TEST_IN_PROGRESS',
    'READY_FOR_CUTOVER',
    'CUTOVER_IN_PROGRESS',
    'CUTOVER_COMPLETE',
    'FINALIZED',
  ]);
  assert.ok(states('App Launch Status Change', 'launchStatus').includes('LAUNCHED'));
  for (const type of [
    'Replication Job State Change',
    'Replication Run State Change',
    'Instance State Change',
  ])
    assert.ok(
      received.some((e) => e['detail-type'] === type),
      `${type} delivered`,
    );
});
