/**
 * Ferry's extension API (src/api/model/ferry/) against a real `ferry server` on loopback:
 * the CLI's signed caller reaches it, model validation and coded errors apply as for SMS,
 * and neither target prefix reaches the other API's operations.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { withRemote } from '../../src/cli/remote/session.js';
import { ALL_SHAPES, FERRY_OPERATIONS, OPERATIONS } from '../../src/api/model/index.js';
import { rejectsWith } from '../helpers/errors.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { signedHeaders } from '../helpers/sigv4.js';

let server: RunningServer;

before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const flags = () => ({
  endpoint: server.url,
  'access-key-file': join(server.dataDir, 'admin-credentials.json'),
});

test('extension model: names unique across both APIs, every referenced shape exists', () => {
  assert.ok(Object.keys(FERRY_OPERATIONS).length > 0);
  const scalars = new Set(['string', 'integer', 'boolean', 'timestamp']);
  for (const [op, [input, output]] of Object.entries(FERRY_OPERATIONS)) {
    assert.ok(!Object.hasOwn(OPERATIONS, op), `${op} is also an SMS operation`);
    assert.equal(ALL_SHAPES[input]?.type, 'structure', `${op} input`);
    assert.equal(ALL_SHAPES[output]?.type, 'structure', `${op} output`);
  }
  for (const [name, s] of Object.entries(ALL_SHAPES)) {
    const refs = s.type === 'structure' ? Object.values(s.members) : s.type === 'list' ? [s.member] : [];
    for (const r of refs) assert.ok(scalars.has(r) || ALL_SHAPES[r], `${name} refers to missing ${r}`);
  }
});

test('the CLI caller signs extension operations; validation and coded errors as for SMS', async () => {
  await withRemote(flags(), async (r) => {
    assert.deepEqual(await r.ferry('ListInstances'), { instances: [] });
    assert.deepEqual(await r.ferry('ListInstances', { appId: 'app-00000000000000000' }), { instances: [] });
    await rejectsWith(r.ferry('GetInstanceConsole', {}), 'FERRY_PARAMETER_MISSING');
    await rejectsWith(r.ferry('GetInstanceConsole', { instanceId: 'i-nope' }), 'FERRY_INVALID_ARGUMENT');
    await rejectsWith(r.ferry('ListInstances', { appId: 7 }), 'FERRY_API_SERIALIZATION');
  });
});

test('a wrong key is refused on extension operations too', async () => {
  await withRemote(flags(), async () => undefined);
  const bad = { ...flags(), 'access-key-file': undefined };
  process.env.AWS_ACCESS_KEY_ID = server.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = 'not-the-secret';
  try {
    await withRemote(bad, (r) => rejectsWith(r.ferry('ListInstances'), 'FERRY_AUTH_SIGNATURE_MISMATCH'));
  } finally {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
  }
});

test('each prefix reaches only its own API', async () => {
  const host = new URL(server.url).host;
  const post = async (target: string) => {
    const headers = await signedHeaders({
      credentials: server.credentials,
      operation: 'unused',
      host,
      extraHeaders: { 'x-amz-target': target },
    });
    const res = await fetch(server.url, { method: 'POST', headers, body: '{}' });
    return { status: res.status, body: (await res.json()) as { __type?: string } };
  };
  assert.equal((await post('Ferry_20261124.ListInstances')).status, 200);
  assert.equal((await post('AWSServerMigrationService_V2016_10_24.GetServers')).status, 200);
  for (const target of [
    'AWSServerMigrationService_V2016_10_24.ListInstances',
    'Ferry_20261124.GetServers',
    'Ferry_20200101.ListInstances',
  ]) {
    const r = await post(target);
    assert.equal(r.status, 400, target);
    assert.equal(r.body.__type, 'UnknownOperationException', target);
  }
});
