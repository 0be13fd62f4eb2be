/**
 * `ferry webhooks …`, `ferry events` and `ferry connectors …` against a real `ferry server`
 * on loopback: a webhook is created (secret shown once), tested, its failing deliveries
 * dead-lettered and redelivered once the receiver is fixed; the event log filters by type
 * and resource; enrolment tokens and the connector list; bad input is coded.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { makeImagesDir } from '../helpers/fixtures.js';
import { ferry } from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { until as waitUntil } from '../helpers/wait.js';
import { webhookReceiver, type Receiver } from '../helpers/webhook-receiver.js';

let server: RunningServer;
let rx: Receiver;
let status = 500;
let env: NodeJS.ProcessEnv;

before(async () => {
  server = await startServer({ imagesDir: await makeImagesDir(1), args: ['--frequency-unit', 'minutes'] });
  rx = await webhookReceiver(() => status);
  env = { FERRY_ENDPOINT: server.url, FERRY_ACCESS_KEY_FILE: join(server.dataDir, 'admin-credentials.json') };
});

after(async () => {
  await server?.stop();
  await rx?.close();
});

async function cli(args: string[]) {
  const r = await ferry(args, { env });
  assert.equal(r.code, 0, `ferry ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const until = (what: string, ok: () => Promise<boolean>) => waitUntil(what, ok, 60_000, 200);

test('webhooks: create, test, dead letters, redeliver; events filtered by type and resource', async () => {
  const created = JSON.parse(
    await cli([
      'webhooks',
      'create',
      rx.url,
      '--name',
      'ops',
      '--events',
      'ferry.webhooks',
      '--max-attempts',
      '1',
      '--json',
    ]),
  ) as { webhook: { webhookId: string }; signingSecret: string };
  const id = created.webhook.webhookId;
  assert.match(created.signingSecret, /^whsec_/);
  assert.match(await cli(['webhooks', 'list']), new RegExp(`${id}\\s+enabled\\s+ops`));

  assert.match(await cli(['webhooks', 'test', id]), /^queued evt-/);
  await until('a dead letter', async () =>
    (await cli(['webhooks', 'deliveries', id, '--state', 'DEAD'])).includes('DEAD'),
  );
  assert.match(await cli(['webhooks', 'deliveries', id]), /DEAD\s+evt-\S+\s+attempts 1\s+HTTP 500/);
  assert.match(await cli(['webhooks', 'show', id]), /0 pending, 0 delivered, 1 dead/);

  status = 204;
  assert.match(await cli(['webhooks', 'redeliver', '--webhook', id]), /^1 delivery\(ies\) queued again/);
  await until('the redelivery', async () => (await cli(['webhooks', 'show', id])).includes('1 delivered'));
  assert.equal(rx.hits.length, 2);

  const rotated = JSON.parse(await cli(['webhooks', 'rotate-secret', id, '--json'])) as {
    signingSecret: string;
  };
  assert.notEqual(rotated.signingSecret, created.signingSecret);
  assert.match(await cli(['webhooks', 'disable', id]), /disabled/);

  // The event log: the two test events, by type and by resource.
  const events = JSON.parse(await cli(['events', '--type', 'Webhook Test', '--json'])) as {
    eventId: string;
    detail: { webhookId: string };
  }[];
  assert.equal(events.length, 1);
  assert.equal(events[0]!.detail.webhookId, id);
  assert.match(await cli(['events', '--resource', id]), /Webhook Test/);
  assert.equal(JSON.parse(await cli(['events', '--resource', 'nothing-here', '--json'])).length, 0);

  await cli(['webhooks', 'delete', id]);
  assert.match(await cli(['webhooks', 'list']), /\(no webhooks\)/);

  for (const bad of [
    ['webhooks', 'create', 'ftp://x/', '--name', 'x'],
    ['webhooks', 'create', rx.url],
    ['webhooks', 'create', rx.url, '--name', 'x', '--events', 'ferry.nope'],
    ['events', '--since', 'yesterday-ish'],
    ['webhooks', 'frobnicate'],
  ]) {
    const r = await ferry(bad, { env });
    assert.notEqual(r.code, 0, bad.join(' '));
    assert.match(r.stderr, /^ferry: FERRY_[A-Z_]+: /, bad.join(' '));
  }
});

test('connectors: enrolment tokens by data directory or API; the list shows the built-in connector', async () => {
  const local = JSON.parse(
    await cli(['connectors', 'enrol', '--data-dir', server.dataDir, '--ttl', '2h', '--json']),
  ) as {
    enrolmentToken: string;
    expiresAt: string;
  };
  assert.match(local.enrolmentToken, /^fce_[A-Za-z0-9_-]{43}$/);
  const hours = (Date.parse(local.expiresAt) - Date.now()) / 3600_000;
  assert.ok(hours > 1.9 && hours <= 2, `expires in ${hours} h`);
  assert.match(await cli(['connectors', 'enrol']), /^fce_\S+\n\(single use, expires /);
  assert.match(await cli(['connectors', 'list']), /HEALTHY/);
  const r = await ferry(['connectors', 'enrol', '--ttl', '9000h'], { env });
  assert.match(r.stderr, /^ferry: FERRY_INVALID_ARGUMENT: /);
});
