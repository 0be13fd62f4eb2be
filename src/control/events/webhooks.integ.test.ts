/**
 * Events and webhooks on a real control plane (SQLite and PostgreSQL) with real HTTP
 * receivers on loopback: state changes become events in their own transaction, deliveries
 * are signed, retried, dead-lettered and redelivered, and two dispatchers sharing the
 * database send each delivery once.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DIALECTS, openTestDatabase } from '../../../test/helpers/databases.js';
import { rejectsWith } from '../../../test/helpers/errors.js';
import { until as waitUntil } from '../../../test/helpers/wait.js';
import { webhookReceiver } from '../../../test/helpers/webhook-receiver.js';
import { repositories, type RunRecord, type SqlExecutor } from '../../db/index.js';
import { systemClock } from '../clock.js';
import { ControlPlane } from '../control-plane.js';
import { WebhookDispatcher } from './dispatcher.js';
import { verifySignature } from './signature.js';

const receiver = webhookReceiver;

/** Deliveries come within moments: poll often, give up after 15 s. */
const until = (what: string, ok: () => boolean | Promise<boolean>) => waitUntil(what, ok, 15_000, 25);

function runRecord(id: string, state: string): RunRecord {
  return {
    replicationRunId: id,
    replicationJobId: 'sms-job-00000000000000001',
    type: 'ON_DEMAND',
    state,
    statusMessage: state,
    stage: null,
    stageProgress: null,
    amiId: null,
    scheduledStartTime: 1,
    startedAt: null,
    completedTime: null,
    description: null,
    encrypted: false,
    kmsKeyId: null,
    step: null,
    checkpoint: {},
    progress: null,
    leaseOwner: null,
    leaseUntil: null,
    attempts: 0,
    createdAt: 1,
  };
}

const TIMING = { retryBaseMs: 40, retryMaxMs: 200, pollMs: 50, timeoutMs: 2000 };
const plane = (db: ControlPlane['db']) =>
  new ControlPlane({ db, masterKey: Buffer.alloc(32, 9), webhooks: TIMING });
/**
 * A dispatcher alone: the run workers of startWorkers would act on the hand-made runs
 * (and change them) — the failure test below covers startWorkers' wiring.
 */
const dispatcher = (c: ControlPlane) =>
  new WebhookDispatcher(c.db, systemClock, c.webhooks, c.events, TIMING);

for (const dialect of DIALECTS) {
  describe(`events and webhooks (${dialect})`, () => {
    test('state changes are signed deliveries; a rolled-back change is no event', async () => {
      const t = await openTestDatabase(dialect);
      const rx = await receiver();
      const c = plane(t.db);
      try {
        const { webhook, signingSecret } = await c.webhooks.createWebhook({
          name: 'runs',
          url: rx.url,
          eventPatterns: ['ferry.replication'],
        });
        assert.match(signingSecret, /^whsec_/);
        const raw = await t.db.all('SELECT secret_ciphertext FROM webhooks');
        assert.ok(!JSON.stringify(raw).includes(signingSecret), 'the secret is stored sealed');
        const d = dispatcher(c);
        d.start();

        await repositories(c.db).runs.insert(runRecord('sms-run-a', 'PENDING'));
        await repositories(c.db).runs.update('sms-run-a', { state: 'ACTIVE' });
        await repositories(c.db).runs.update('sms-run-a', { statusMessage: '50 %' }); // not an event
        await repositories(c.db).runs.update('sms-run-a', { state: 'COMPLETED', amiId: 'ami-1' });
        await assert.rejects(
          c.db.transaction(async (tx: SqlExecutor) => {
            await repositories(tx).runs.insert(runRecord('sms-run-b', 'PENDING'));
            throw new Error('roll back');
          }),
        );
        // An instance event does not match this webhook's patterns.
        await repositories(c.db).instances.insert({
          instanceId: 'i-1',
          appId: null,
          serverId: 's-1',
          imageId: 'ami-1',
          instanceType: 't3.micro',
          state: 'pending',
          statusMessage: '',
          dir: '/nowhere',
          pid: null,
          launchOrder: null,
          hostId: null,
          createdAt: 1,
          updatedAt: 1,
        });

        await until('three deliveries', () => rx.hits.length >= 3);
        await d.idle();
        assert.equal(rx.hits.length, 3);
        const events = rx.hits
          .map((h) => {
            assert.equal(
              verifySignature(signingSecret, h.headers['ferry-signature'] as string, h.body),
              true,
            );
            assert.equal(h.headers['content-type'], 'application/json');
            const e = JSON.parse(h.body) as Record<string, unknown>;
            assert.equal(h.headers['ferry-event-id'], e.id);
            return e;
          })
          .sort((a, b) => String(a.id).localeCompare(String(b.id)));
        assert.deepEqual(
          events.map((e) => [e.source, e['detail-type'], (e.detail as { state: string }).state]),
          [
            ['ferry.replication', 'Replication Run State Change', 'PENDING'],
            ['ferry.replication', 'Replication Run State Change', 'ACTIVE'],
            ['ferry.replication', 'Replication Run State Change', 'COMPLETED'],
          ],
        );
        assert.match(String(events[0]!.time), /^\d{4}-\d\d-\d\dT/);
        assert.equal(events[0]!.version, '0');

        const all = await c.events.listEvents(c.db, {});
        assert.deepEqual(
          all.events.map((e) => e.detailType),
          [
            'Replication Run State Change',
            'Replication Run State Change',
            'Replication Run State Change',
            'Instance State Change',
          ],
        );
        assert.equal((await c.events.listEvents(c.db, { resourceId: 'sms-run-b' })).events.length, 0);
        assert.equal((await c.events.listEvents(c.db, { resourceId: 'i-1' })).events.length, 1);
        const first = await c.events.listEvents(c.db, { maxResults: 3 });
        assert.equal(first.events.length, 3);
        const rest = await c.events.listEvents(c.db, { maxResults: 3, nextToken: first.nextToken! });
        assert.deepEqual(
          rest.events.map((e) => e.detailType),
          ['Instance State Change'],
        );
        const got = await c.webhooks.getWebhook({ webhookId: webhook.webhookId });
        assert.equal(got.webhook.deliveredDeliveries, 3);
        await d.stop();
      } finally {
        await rx.close();
        await t.close();
      }
    });

    test('failures retry with backoff, then dead-letter; redelivery sends again', async () => {
      const t = await openTestDatabase(dialect);
      let status = 500;
      const rx = await receiver(() => status);
      const c = plane(t.db);
      try {
        const { webhook } = await c.webhooks.createWebhook({ name: 'flaky', url: rx.url, maxAttempts: 3 });
        c.startWorkers({ soleWorker: true });
        const { eventId } = await c.webhooks.testWebhook({ webhookId: webhook.webhookId });
        await until('dead letter', async () => {
          const d = await c.webhooks.listWebhookDeliveries({ state: 'DEAD' });
          return d.deliveries.length === 1;
        });
        assert.deepEqual(
          rx.hits.map((h) => h.headers['ferry-delivery-attempt']),
          ['1', '2', '3'],
        );
        assert.ok(rx.hits.every((h) => h.headers['ferry-event-id'] === eventId));
        const dead = (await c.webhooks.listWebhookDeliveries({ webhookId: webhook.webhookId }))
          .deliveries[0]!;
        assert.equal(dead.state, 'DEAD');
        assert.equal(dead.attempts, 3);
        assert.equal(dead.lastStatus, 500);
        assert.match(dead.lastError!, /HTTP 500/);

        status = 200;
        assert.deepEqual(await c.webhooks.redeliverWebhookDeliveries({ webhookId: webhook.webhookId }), {
          redelivered: 1,
        });
        await until('redelivery', () => rx.hits.length === 4);
        await c.runDueWork();
        const done = (await c.webhooks.listWebhookDeliveries({ webhookId: webhook.webhookId }))
          .deliveries[0]!;
        assert.equal(done.state, 'DELIVERED');
        assert.equal(done.lastStatus, 200);

        // A receiver that is not there: the network error is what the delivery records.
        const gone = await receiver();
        await gone.close();
        const down = await c.webhooks.createWebhook({ name: 'down', url: gone.url, maxAttempts: 1 });
        await c.webhooks.testWebhook({ webhookId: down.webhook.webhookId });
        await until('refused delivery', async () => {
          const d = await c.webhooks.listWebhookDeliveries({
            webhookId: down.webhook.webhookId,
            state: 'DEAD',
          });
          return d.deliveries.length === 1;
        });
        const refused = await c.webhooks.listWebhookDeliveries({ webhookId: down.webhook.webhookId });
        assert.match(refused.deliveries[0]!.lastError!, /ECONNREFUSED/);
      } finally {
        await c.stopWorkers();
        await rx.close();
        await t.close();
      }
    });

    test('two dispatchers on one database send each delivery once', async () => {
      const t = await openTestDatabase(dialect);
      const rx = await receiver();
      const a = plane(t.db);
      const b = plane(t.db);
      const [da, db] = [dispatcher(a), dispatcher(b)];
      try {
        await a.webhooks.createWebhook({ name: 'all', url: rx.url });
        da.start();
        db.start();
        for (let i = 0; i < 12; i++) {
          await repositories(i % 2 ? a.db : b.db).runs.insert(runRecord(`sms-run-${i}`, 'PENDING'));
        }
        await until('twelve deliveries', () => rx.hits.length >= 12);
        await Promise.all([da.idle(), db.idle()]);
        await new Promise((r) => setTimeout(r, 200)); // a duplicate would arrive by now
        const ids = rx.hits.map((h) => h.headers['ferry-event-id']);
        assert.equal(ids.length, 12);
        assert.equal(new Set(ids).size, 12);
      } finally {
        await da.stop();
        await db.stop();
        await rx.close();
        await t.close();
      }
    });

    test('bad webhook input is refused with coded errors', async () => {
      const t = await openTestDatabase(dialect);
      const c = plane(t.db);
      try {
        const bad = [
          { name: 'x', url: 'ftp://example.test/' },
          { name: 'x', url: 'not a url' },
          { name: 'x', url: 'http://user:pw@127.0.0.1/' },
          { name: 'x', url: 'http://127.0.0.1/', eventPatterns: ['ferry.nothing'] },
          { name: 'x', url: 'http://127.0.0.1/', caBundle: 'not pem' },
          { name: 'x', url: 'http://127.0.0.1/', maxAttempts: 0 },
        ];
        for (const input of bad) await rejectsWith(c.webhooks.createWebhook(input), 'FERRY_INVALID_ARGUMENT');
        await rejectsWith(c.webhooks.getWebhook({ webhookId: 'wh-nope' }), 'FERRY_NOT_FOUND');
        await rejectsWith(c.events.listEvents(c.db, { detailType: 'Nope' }), 'FERRY_INVALID_ARGUMENT');
        await rejectsWith(c.events.listEvents(c.db, { nextToken: 'garbage' }), 'FERRY_INVALID_ARGUMENT');
        await rejectsWith(c.webhooks.redeliverWebhookDeliveries({}), 'FERRY_INVALID_ARGUMENT');
        assert.deepEqual((await c.webhooks.listWebhooks()).webhooks, []);
      } finally {
        await t.close();
      }
    });
  });
}
