/**
 * HTTPS by default: the server makes a CA and a certificate on first start; the SDK and
 * awscli connect when they trust DATA_DIR/tls/ca.pem, and refuse otherwise. One server per
 * data directory. Plain HTTP only on loopback.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { SMS } from '@aws-sdk/client-sms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { aws } from '../helpers/aws-cli.js';
import { assertCleanFailure, ferry } from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
before(async () => {
  server = await startServer({ tls: true });
});
after(async () => {
  await server?.stop();
});

test('the SDK connects over HTTPS when it trusts the Ferry CA, and refuses otherwise', async () => {
  assert.match(server.url, /^https:/);
  const ca = await readFile(join(server.dataDir, 'tls', 'ca.pem'), 'utf8');
  const trusted = new SMS({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: server.credentials,
    requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca }) }),
  });
  assert.deepEqual((await trusted.getServers({})).serverList ?? [], []);
  trusted.destroy();
  const untrusted = new SMS({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: server.credentials,
    maxAttempts: 1,
  });
  await assert.rejects(untrusted.getServers({}), /certificate|self[- ]signed/i);
  untrusted.destroy();
});

test('awscli connects with --ca-bundle', async () => {
  const r = await aws(server.url, server.credentials, [
    'get-connectors',
    '--ca-bundle',
    join(server.dataDir, 'tls', 'ca.pem'),
  ]);
  assert.equal(r.rc, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { connectorList: [] });
});

test('a second server on the same data directory is refused; plain HTTP only on loopback', async () => {
  const second = await ferry(
    ['server', '--data-dir', server.dataDir, '--listen', '127.0.0.1:0', '--insecure-http'],
    {
      timeoutMs: 30_000,
    },
  );
  assertCleanFailure(second, 'FERRY_OPERATION_NOT_PERMITTED');
  assert.match(second.stderr, /another ferry server \(pid \d+\)/);
  const open = await ferry([
    'server',
    '--data-dir',
    server.dataDir,
    '--listen',
    '0.0.0.0:0',
    '--insecure-http',
  ]);
  assertCleanFailure(open, 'FERRY_INVALID_ARGUMENT');
});
