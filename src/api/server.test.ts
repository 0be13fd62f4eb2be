import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { signedHeaders, type TestCredentials } from '../../test/helpers/sigv4.js';
import { ParameterMissingError, OperationNotPermittedError } from '../errors/index.js';
import { createApi, type OperationTable } from './index.js';

const KEY: TestCredentials = { accessKeyId: 'AKIAFERRYTEST0000001', secretAccessKey: 'secret/with+chars' };
const TEMP: TestCredentials = {
  accessKeyId: 'ASIAFERRYTEST0000002',
  secretAccessKey: 'temp-secret',
  sessionToken: 'token-123',
};
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function app(operations: OperationTable = {}, now?: () => number) {
  const calls: string[] = [];
  const ops: OperationTable = {
    GetServers: async (input) => {
      calls.push('GetServers');
      return {
        serverCatalogStatus: 'AVAILABLE',
        lastModifiedOn: 1_700_000_000_500,
        serverList: [
          {
            serverId: 's-1',
            serverType: 'VIRTUAL_MACHINE',
            secret: 'not modelled',
            vmServer: { vmName: 'a', extra: 1 },
          },
        ],
        nextToken: input.nextToken ? undefined : 'p2',
      };
    },
    DeleteServerCatalog: async () => {
      calls.push('DeleteServerCatalog');
      return {};
    },
    CreateReplicationJob: async (input) => ({ replicationJobId: `job-${String(input.seedReplicationTime)}` }),
    DeleteApp: async () => {
      throw new OperationNotPermittedError('app is launching');
    },
    ...operations,
  };
  const api = createApi({
    operations: ops,
    keys: async (id) =>
      id === KEY.accessKeyId
        ? { secretAccessKey: KEY.secretAccessKey }
        : id === TEMP.accessKeyId
          ? { secretAccessKey: TEMP.secretAccessKey, sessionTokenHash: sha256(TEMP.sessionToken!) }
          : undefined,
    sha256,
    ...(now ? { now } : {}),
  });
  return { api, calls };
}

async function call(
  a: ReturnType<typeof app>['api'],
  operation: string,
  body = '{}',
  opts: Partial<Parameters<typeof signedHeaders>[0]> = {},
) {
  const headers = await signedHeaders({ credentials: KEY, operation, body, ...opts });
  const r = await a.inject({ method: 'POST', url: opts.path ?? '/', headers, payload: body });
  return { status: r.statusCode, body: r.json() as Record<string, unknown>, headers: r.headers };
}

test('a signed request reaches its operation; the response is model-shaped with epoch-second times', async () => {
  const { api } = app();
  const r = await call(api, 'GetServers', '{"maxResults":10}');
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /application\/x-amz-json-1\.1/);
  assert.ok(r.headers['x-amzn-requestid']);
  assert.deepEqual(r.body, {
    serverCatalogStatus: 'AVAILABLE',
    lastModifiedOn: 1_700_000_000.5,
    serverList: [{ serverId: 's-1', serverType: 'VIRTUAL_MACHINE', vmServer: { vmName: 'a' } }],
    nextToken: 'p2',
  });
});

test('timestamps in requests are epoch seconds and reach the domain as milliseconds', async () => {
  const { api } = app();
  const r = await call(api, 'CreateReplicationJob', '{"serverId":"s-1","seedReplicationTime":1714979290}');
  assert.equal(r.status, 200);
  assert.equal(r.body.replicationJobId, 'job-1714979290000');
});

test('any region, a base path and a session token are accepted', async () => {
  const { api } = app();
  assert.equal((await call(api, 'GetServers', '{}', { region: 'eu-central-1' })).status, 200);
  assert.equal((await call(api, 'GetServers', '{}', { path: '/some/base/' })).status, 200);
  assert.equal((await call(api, 'GetServers', '{}', { credentials: TEMP })).status, 200);
});

const negative: Array<[string, (h: Record<string, string>) => void, string, number]> = [
  ['no Authorization', (h) => delete h.authorization, 'MissingAuthenticationTokenException', 403],
  [
    'garbled Authorization',
    (h) => (h.authorization = 'AWS4-HMAC-SHA256 nonsense'),
    'IncompleteSignatureException',
    400,
  ],
  ['SigV2', (h) => (h.authorization = 'AWS AKIAFERRYTEST0000001:abc'), 'IncompleteSignatureException', 400],
  [
    'tampered signature',
    (h) => (h.authorization = h.authorization!.replace(/.$/, (c) => (c === '0' ? '1' : '0'))),
    'InvalidSignatureException',
    403,
  ],
  [
    'tampered target',
    (h) => (h['x-amz-target'] = h['x-amz-target']!.replace('GetServers', 'GetConnectors')),
    'InvalidSignatureException',
    403,
  ],
  [
    'unknown key',
    (h) => (h.authorization = h.authorization!.replace(KEY.accessKeyId, 'AKIAUNKNOWNKEY000001')),
    'UnrecognizedClientException',
    403,
  ],
  [
    'other service',
    (h) => (h.authorization = h.authorization!.replace('/sms/', '/ec2/')),
    'IncompleteSignatureException',
    400,
  ],
  [
    'scope date ≠ request date',
    (h) =>
      (h.authorization = h.authorization!.replace(/Credential=([^/]+)\/\d{8}/, 'Credential=$1/20200101')),
    'IncompleteSignatureException',
    400,
  ],
];

for (const [name, mutate, type, status] of negative) {
  test(`SigV4 refuses: ${name} → ${type}`, async () => {
    const { api, calls } = app();
    const headers = await signedHeaders({ credentials: KEY, operation: 'GetServers' });
    mutate(headers);
    const r = await api.inject({ method: 'POST', url: '/', headers, payload: '{}' });
    assert.equal(r.statusCode, status);
    assert.equal(r.json().__type, type);
    assert.equal(r.headers['x-amzn-errortype'], type);
    assert.deepEqual(calls, [], 'the operation never ran');
    assert.doesNotMatch(r.body, /secret\/with|canonical|\.js:/i, 'nothing leaks');
  });
}

test('SigV4 refuses a body changed after signing', async () => {
  const { api } = app();
  const headers = await signedHeaders({
    credentials: KEY,
    operation: 'GetServers',
    body: '{"maxResults":1}',
  });
  const r = await api.inject({ method: 'POST', url: '/', headers, payload: '{"maxResults":2}' });
  assert.equal(r.json().__type, 'InvalidSignatureException');
});

test('SigV4 refuses a temporary key without its token, and a token for a long-term key', async () => {
  const { api } = app();
  const noToken = await signedHeaders({
    credentials: { ...TEMP, sessionToken: undefined },
    operation: 'GetServers',
  } as never);
  let r = await api.inject({ method: 'POST', url: '/', headers: noToken, payload: '{}' });
  assert.equal(r.json().__type, 'UnrecognizedClientException');
  const wrong = await signedHeaders({
    credentials: { ...TEMP, sessionToken: 'other' },
    operation: 'GetServers',
  });
  r = await api.inject({ method: 'POST', url: '/', headers: wrong, payload: '{}' });
  assert.equal(r.json().__type, 'UnrecognizedClientException');
  const extra = await signedHeaders({ credentials: { ...KEY, sessionToken: 'x' }, operation: 'GetServers' });
  r = await api.inject({ method: 'POST', url: '/', headers: extra, payload: '{}' });
  assert.equal(r.json().__type, 'UnrecognizedClientException');
});

test('SigV4 refuses requests outside the 5-minute clock-skew window', async () => {
  const { api } = app();
  const old = await call(api, 'GetServers', '{}', { date: new Date(Date.now() - 6 * 60_000) });
  assert.deepEqual([old.status, old.body.__type], [400, 'RequestExpired']);
  const future = await call(api, 'GetServers', '{}', { date: new Date(Date.now() + 6 * 60_000) });
  assert.equal(future.body.__type, 'RequestExpired');
  const slightlyOff = await call(api, 'GetServers', '{}', { date: new Date(Date.now() - 4 * 60_000) });
  assert.equal(slightlyOff.status, 200);
});

test('a replayed mutating request is refused; a same-second duplicate and a replayed read are allowed', async () => {
  let now = Date.now();
  const { api, calls } = app({}, () => now);
  const headers = await signedHeaders({
    credentials: KEY,
    operation: 'DeleteServerCatalog',
    date: new Date(now),
  });
  const first = await api.inject({ method: 'POST', url: '/', headers, payload: '{}' });
  assert.equal(first.statusCode, 200);
  // awscli sends byte-identical requests when one command runs twice within a second.
  const duplicate = await api.inject({ method: 'POST', url: '/', headers, payload: '{}' });
  assert.equal(duplicate.statusCode, 200);
  now += 10_000;
  const again = await api.inject({ method: 'POST', url: '/', headers, payload: '{}' });
  assert.equal(again.statusCode, 403);
  assert.equal(again.json().__type, 'InvalidSignatureException');
  assert.match(again.json().message, /already been received/);
  assert.deepEqual(calls, ['DeleteServerCatalog', 'DeleteServerCatalog']);
  const read = await signedHeaders({ credentials: KEY, operation: 'GetServers', date: new Date(now) });
  for (let i = 0; i < 2; i++) {
    assert.equal(
      (await api.inject({ method: 'POST', url: '/', headers: read, payload: '{}' })).statusCode,
      200,
    );
  }
});

test('a request retried after a 5xx may reuse its signature', async () => {
  let fail = true;
  const { api } = app({
    DeleteServerCatalog: async () => {
      if (fail) {
        fail = false;
        throw Object.assign(new Error('db hiccup'), { code: 'EIO' });
      }
      return {};
    },
  });
  const headers = await signedHeaders({ credentials: KEY, operation: 'DeleteServerCatalog' });
  const first = await api.inject({ method: 'POST', url: '/', headers, payload: '{}' });
  assert.equal(first.statusCode, 503);
  const retry = await api.inject({ method: 'POST', url: '/', headers, payload: '{}' });
  assert.equal(retry.statusCode, 200);
});

test('unknown targets, bad JSON and wrong JSON types get the generic AWS errors', async () => {
  const { api } = app();
  let r = await call(api, 'NoSuchOperation');
  assert.deepEqual([r.status, r.body.__type], [400, 'UnknownOperationException']);
  r = await call(api, 'GetServers', '{"maxResults":');
  assert.deepEqual([r.status, r.body.__type], [400, 'SerializationException']);
  r = await call(api, 'GetServers', '[]');
  assert.equal(r.body.__type, 'SerializationException');
  r = await call(api, 'GetServers', '{"maxResults":"ten"}');
  assert.equal(r.body.__type, 'SerializationException');
  const get = await api.inject({ method: 'GET', url: '/nothing' });
  assert.equal(get.statusCode, 404);
  assert.equal(get.json().__type, 'UnknownOperationException');
});

test('validation: required members, enums, patterns, lengths and ranges use the model exception names', async () => {
  const { api } = app();
  const cases: Array<[string, string, string]> = [
    ['CreateReplicationJob', '{"serverId":"s-1"}', 'MissingRequiredParameterException'],
    [
      'CreateReplicationJob',
      '{"serverId":"s-1","seedReplicationTime":1,"licenseType":"FOO"}',
      'InvalidParameterException',
    ],
    [
      'CreateReplicationJob',
      '{"serverId":"s-1","seedReplicationTime":1,"frequency":0}',
      'InvalidParameterException',
    ],
    [
      'CreateReplicationJob',
      '{"serverId":"s-1","seedReplicationTime":"2024-01-01"}',
      'SerializationException',
    ],
    ['GetAppValidationConfiguration', '{"appId":"app-123"}', 'InvalidParameterException'],
    ['GetAppValidationConfiguration', '{}', 'MissingRequiredParameterException'],
    ['GetApp', '{}', 'MissingRequiredParameterException'],
    ['GetServers', '{"maxResults":0}', 'InvalidParameterException'],
    [
      'PutAppValidationConfiguration',
      '{"appId":"app-0123456789abcdef0","appValidationConfigurations":[{"name":"has space"}]}',
      'InvalidParameterException',
    ],
    [
      'PutAppValidationConfiguration',
      '{"appId":"app-0123456789abcdef0","appValidationConfigurations":[{"ssmValidationParameters":{"executionTimeoutSeconds":59}}]}',
      'InvalidParameterException',
    ],
    ['GenerateTemplate', '{"appId":"a","templateFormat":"XML"}', 'InvalidParameterException'],
  ];
  for (const [op, body, type] of cases) {
    const r = await call(api, op, body);
    assert.equal(r.body.__type, type, `${op} ${body}: ${JSON.stringify(r.body)}`);
    assert.equal(r.status, 400);
    assert.equal(typeof r.body.message, 'string');
  }
});

test('domain errors map to SMS names; internal errors hide their message', async () => {
  const { api } = app({
    GetApp: async () => {
      throw new ParameterMissingError('x');
    },
    ListApps: async () => {
      throw new Error('SELECT secret FROM keys failed');
    },
  });
  const r = await call(api, 'DeleteApp', '{"appId":"app-1"}');
  assert.deepEqual([r.status, r.body.__type], [400, 'OperationNotPermittedException']);
  const boom = await call(api, 'ListApps');
  assert.deepEqual([boom.status, boom.body.__type], [500, 'InternalError']);
  assert.doesNotMatch(String(boom.body.message), /SELECT|secret/);
});

test('/healthz and /metrics', async () => {
  const { api } = app();
  await call(api, 'GetServers');
  assert.equal((await api.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  const m = await api.inject({ method: 'GET', url: '/metrics' });
  assert.equal(m.statusCode, 200);
  assert.match(m.body, /^ferry_api_requests_total\{operation="GetServers",status="200",error=""\} 1$/m);
  assert.match(m.body, /ferry_api_request_duration_seconds_count\{operation="GetServers"\} 1/);
});
