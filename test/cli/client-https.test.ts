/**
 * The client commands over HTTPS (the server's default): they connect when they trust the
 * CA the server made (DATA_DIR/tls/ca.pem, by --ca-bundle or AWS_CA_BUNDLE), and refuse
 * with FERRY_API_TLS_UNTRUSTED otherwise.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { assertCleanFailure, ferry } from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
let env: NodeJS.ProcessEnv;

before(async () => {
  server = await startServer({ tls: true });
  env = {
    FERRY_ENDPOINT: '',
    FERRY_ACCESS_KEY_FILE: join(server.dataDir, 'admin-credentials.json'),
    FERRY_CA_BUNDLE: '',
    AWS_CA_BUNDLE: '',
  };
});
after(async () => {
  await server?.stop();
});

test('trusting the server CA: --ca-bundle or AWS_CA_BUNDLE; without it a coded refusal', async () => {
  assert.match(server.url, /^https:/);
  const ca = join(server.dataDir, 'tls', 'ca.pem');
  const ok = await ferry(['servers', '--endpoint', server.url, '--ca-bundle', ca, '--json'], { env });
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), []);
  const jobs = await ferry(['jobs', '--json'], {
    env: { ...env, FERRY_ENDPOINT: server.url, AWS_CA_BUNDLE: ca },
  });
  assert.equal(jobs.code, 0, jobs.stderr);
  assert.deepEqual(JSON.parse(jobs.stdout), []);

  const untrusted = await ferry(['servers', '--endpoint', server.url], { env });
  assertCleanFailure(untrusted, 'FERRY_API_TLS_UNTRUSTED');
  assert.equal(untrusted.code, 6);
  assert.match(untrusted.stderr, /--ca-bundle/);
});
