import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventsOf } from './capture.js';
import { signatureHeader, verifySignature } from './signature.js';
import { matches } from './catalog.js';

const run = (state: string, extra: object = {}) => ({
  replicationRunId: 'sms-run-1',
  replicationJobId: 'sms-job-1',
  type: 'AUTOMATIC',
  state,
  statusMessage: `now ${state}`,
  amiId: null,
  ...extra,
});

test('a run insert and each run state change are events; progress writes are not', () => {
  const created = eventsOf('replication_runs', undefined, run('PENDING'));
  assert.equal(created.length, 1);
  assert.equal(created[0]!.detailType, 'Replication Run State Change');
  assert.deepEqual(created[0]!.detail.previousState, null);
  assert.deepEqual(eventsOf('replication_runs', run('ACTIVE'), run('ACTIVE', { statusMessage: '40 %' })), []);
  const done = eventsOf('replication_runs', run('ACTIVE'), run('COMPLETED', { amiId: 'ami-1' }));
  assert.equal(done[0]!.detail.state, 'COMPLETED');
  assert.equal(done[0]!.detail.previousState, 'ACTIVE');
  assert.deepEqual(done[0]!.resources, ['sms-run-1', 'sms-job-1', 'ami-1']);
  assert.deepEqual(eventsOf('servers', undefined, {}), []);
});

test('app writes: launch status, lifecycle state and new validation results are events', () => {
  const base = { appId: 'app-1', validationOutputs: [] };
  const body = (launch?: string, lifecycle?: string) => ({
    name: 'shop',
    serverGroups: [],
    tags: [],
    ...(launch ? { launch: { status: launch, message: launch, instanceIds: ['i-1'] } } : {}),
    ...(lifecycle ? { lifecycle: { state: lifecycle, message: lifecycle, updatedAt: 1, history: [] } } : {}),
  });
  assert.deepEqual(eventsOf('apps', undefined, { ...base, body: body() }), []);
  const launched = eventsOf(
    'apps',
    { ...base, body: body('LAUNCH_PENDING') },
    { ...base, body: body('LAUNCHED') },
  );
  assert.deepEqual(
    launched.map((e) => [e.detailType, e.detail.launchStatus, e.detail.previousLaunchStatus]),
    [['App Launch Status Change', 'LAUNCHED', 'LAUNCH_PENDING']],
  );
  const both = eventsOf(
    'apps',
    { ...base, body: body('LAUNCHED', 'READY_FOR_TESTING') },
    { ...base, body: body('TERMINATED', 'TEST_IN_PROGRESS') },
  );
  assert.deepEqual(
    both.map((e) => e.detailType),
    ['App Launch Status Change', 'App Lifecycle State Change'],
  );
  const out = (status: string, t: number) => [{ validationId: 'val-1', status, latestValidationTime: t }];
  const validated = eventsOf(
    'apps',
    { ...base, body: body(), validationOutputs: out('PENDING', 1) },
    { ...base, body: body(), validationOutputs: out('SUCCEEDED', 2) },
  );
  assert.deepEqual(
    validated.map((e) => [e.detailType, e.detail.status]),
    [['App Validation Result', 'SUCCEEDED']],
  );
  const same = eventsOf(
    'apps',
    { ...base, body: body(), validationOutputs: out('SUCCEEDED', 2) },
    { ...base, body: body(), validationOutputs: out('SUCCEEDED', 2) },
  );
  assert.deepEqual(same, []);
});

test('signatures verify only for the same secret, body and a recent time', () => {
  const body = '{"id":"evt-1"}';
  const h = signatureHeader('whsec_a', 1_700_000_000, body);
  assert.match(h, /^t=1700000000,v1=[0-9a-f]{64}$/);
  assert.equal(verifySignature('whsec_a', h, body, 1_700_000_100), true);
  assert.equal(verifySignature('whsec_b', h, body, 1_700_000_100), false);
  assert.equal(verifySignature('whsec_a', h, body + ' ', 1_700_000_100), false);
  assert.equal(verifySignature('whsec_a', h, body, 1_700_000_301), false, 'older than the tolerance');
  assert.equal(verifySignature('whsec_a', undefined, body), false);
  assert.equal(verifySignature('whsec_a', 't=x,v1=zz', body), false);
});

test('webhook patterns select by source or detail type; none selects all', () => {
  const e = { source: 'ferry.launch', detailType: 'Instance State Change' };
  assert.equal(matches([], e), true);
  assert.equal(matches(['ferry.launch'], e), true);
  assert.equal(matches(['Instance State Change'], e), true);
  assert.equal(matches(['ferry.replication', 'App Validation Result'], e), false);
});

test('docs/events.md lists every event of the catalog with its source', async () => {
  const { readFile } = await import('node:fs/promises');
  const { EVENT_TYPES } = await import('./catalog.js');
  const doc = await readFile(new URL('../../../../docs/events.md', import.meta.url), 'utf8');
  const rows = new Map(
    [...doc.matchAll(/^\| `([^`]+)` \| `([^`]+)` \|/gm)].map((m) => [m[1] as string, m[2] as string]),
  );
  assert.deepEqual(Object.fromEntries(rows), { ...EVENT_TYPES });
});
