/**
 * `ferry keys create|list|revoke` against the data directory of a running server: new
 * keys work at once, revoked keys stop at once, temporary keys need their session token.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { assertCleanFailure, ferry, tempDir } from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { smsClient } from '../helpers/sms.js';

let server: RunningServer;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

test('first start: the admin key file is private to its owner and works', async () => {
  const s = await stat(join(server.dataDir, 'admin-credentials.json'));
  assert.equal(s.mode & 0o777, 0o600);
  assert.equal((await stat(server.dataDir)).mode & 0o777, 0o700);
  assert.equal((await stat(join(server.dataDir, 'master.key'))).mode & 0o777, 0o600);
  const sms = smsClient(server);
  assert.deepEqual((await sms.getConnectors({})).connectorList ?? [], []);
  sms.destroy();
});

test('keys create while the server runs: the key works at once; revoke stops it at once', async () => {
  const created = await ferry([
    'keys',
    'create',
    '--data-dir',
    server.dataDir,
    '--json',
    '--description',
    'ci',
  ]);
  assert.equal(created.code, 0, created.stderr);
  const key = JSON.parse(created.stdout) as { accessKeyId: string; secretAccessKey: string };
  assert.deepEqual(Object.keys(key), ['accessKeyId', 'secretAccessKey']);
  assert.match(key.accessKeyId, /^AKIA[A-Z2-7]{16}$/);
  assert.equal(key.secretAccessKey.length, 40);
  const sms = smsClient(server, key);
  await sms.getServers({});

  const listed = await ferry(['keys', 'list', '--data-dir', server.dataDir, '--json']);
  const keys = JSON.parse(listed.stdout) as {
    accessKeyId: string;
    status: string;
    description: string;
    temporary: boolean;
  }[];
  const mine = keys.find((k) => k.accessKeyId === key.accessKeyId);
  assert.equal(mine?.status, 'active');
  assert.equal(mine?.description, 'ci');
  assert.equal(mine?.temporary, false);
  assert.ok(!listed.stdout.includes(key.secretAccessKey), 'list never shows secrets');

  const revoked = await ferry(['keys', 'revoke', key.accessKeyId, '--data-dir', server.dataDir]);
  assert.equal(revoked.code, 0, revoked.stderr);
  await assert.rejects(sms.getServers({}), { name: 'UnrecognizedClientException' });
  sms.destroy();
  assertCleanFailure(
    await ferry(['keys', 'revoke', 'AKIANOSUCHKEY0000000', '--data-dir', server.dataDir]),
    'FERRY_NOT_FOUND',
  );
});

test('a temporary key works only with its session token', async () => {
  const created = await ferry(['keys', 'create', '--data-dir', server.dataDir, '--json', '--ttl', '15m']);
  assert.equal(created.code, 0, created.stderr);
  const key = JSON.parse(created.stdout) as {
    accessKeyId: string;
    secretAccessKey: string;
    sessionToken: string;
    expiration: string;
  };
  assert.match(key.accessKeyId, /^ASIA/);
  assert.ok(Date.parse(key.expiration) > Date.now() + 14 * 60_000);
  const withToken = smsClient(server, {
    accessKeyId: key.accessKeyId,
    secretAccessKey: key.secretAccessKey,
    sessionToken: key.sessionToken,
  });
  await withToken.getServers({});
  const without = smsClient(server, { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey });
  await assert.rejects(without.getServers({}), { name: 'UnrecognizedClientException' });
  withToken.destroy();
  without.destroy();
});

test('keys create on a fresh data directory needs no server; secrets are not stored in clear', async () => {
  const dir = join(await tempDir(), 'fresh');
  const r = await ferry(['keys', 'create', '--data-dir', dir]);
  assert.equal(r.code, 0, r.stderr);
  const secret = /secretAccessKey: (\S+)/.exec(r.stdout)?.[1];
  assert.ok(secret);
  const { readFile } = await import('node:fs/promises');
  const db = await readFile(join(dir, 'ferry.db'));
  const wal = await readFile(join(dir, 'ferry.db-wal')).catch(() => Buffer.alloc(0));
  assert.ok(!db.includes(secret) && !wal.includes(secret), 'the secret is encrypted at rest');
  assertCleanFailure(
    await ferry(['keys', 'create', '--data-dir', dir, '--ttl', '1y']),
    'FERRY_INVALID_ARGUMENT',
  );
});
