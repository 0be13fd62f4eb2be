/**
 * `ferry servers`, `ferry jobs`, `ferry runs` against a real `ferry server` on loopback
 * (plain HTTP): SigV4 with the admin key file or the AWS variables, tables and --json,
 * `runs --watch` to the end of a run (exit 0) or of a failed one (FERRY_RUN_FAILED), and
 * the coded errors of a wrong key, an unknown job, a closed port.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { assertCleanFailure, ferry, pseudoRandom, tempDir, type CliResult } from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
let images: string;
let keyFile: string;
/** Nothing from the environment of the test run leaks into the client's choices. */
let env: NodeJS.ProcessEnv;

before(async () => {
  images = await tempDir('ferry-client-');
  for (const [name, size, seed] of [
    ['app01', 4 << 20, 31],
    ['broken01', 1 << 20, 32],
  ] as const) {
    await mkdir(join(images, name));
    await writeFile(join(images, name, 'disk.img'), pseudoRandom(size, seed));
  }
  server = await startServer({ imagesDir: images, args: ['--frequency-unit', 'minutes'] });
  keyFile = join(server.dataDir, 'admin-credentials.json');
  env = {
    FERRY_ENDPOINT: server.url,
    FERRY_ACCESS_KEY_FILE: '',
    FERRY_CA_BUNDLE: '',
    AWS_CA_BUNDLE: '',
    AWS_ACCESS_KEY_ID: server.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.credentials.secretAccessKey,
    AWS_SESSION_TOKEN: '',
  };
});

after(async () => {
  await server?.stop();
});

function client(args: string[], extra: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<CliResult> {
  return ferry(args, { env: { ...env, ...extra }, timeoutMs });
}

async function serverIds(): Promise<Record<string, string>> {
  const r = await client(['servers', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const list = JSON.parse(r.stdout) as { serverId: string; vmServer: { vmName: string } }[];
  return Object.fromEntries(list.map((s) => [s.vmServer.vmName, s.serverId]));
}

test('servers: --json for scripts, a table for people; a key file or the AWS variables', async () => {
  const byFile = await client(['servers', '--endpoint', server.url, '--access-key-file', keyFile, '--json'], {
    FERRY_ENDPOINT: '',
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
  });
  assert.equal(byFile.code, 0, byFile.stderr);
  const list = JSON.parse(byFile.stdout) as { serverId: string; vmServer: { vmName: string } }[];
  assert.deepEqual(list.map((s) => s.vmServer.vmName).sort(), ['app01', 'broken01']);
  assert.ok(list.every((s) => /^s-[0-9a-f]{17}$/.test(s.serverId)));

  const table = await client(['servers']);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^SERVER ID\s+NAME\s+VM ID\s+VM MANAGER\s+JOB$/);
  assert.equal(lines.length, 3);
  for (const s of list)
    assert.ok(lines.some((l) => l.startsWith(s.serverId) && l.includes(s.vmServer.vmName)));

  // A key made with `ferry keys create --json`, as its output is.
  const made = await ferry(['keys', 'create', '--data-dir', server.dataDir, '--json']);
  assert.equal(made.code, 0, made.stderr);
  const file = join(await tempDir(), 'key.json');
  await writeFile(file, made.stdout);
  const withNew = await client(['servers', '--access-key-file', file, '--json']);
  assert.equal(withNew.code, 0, withNew.stderr);
  assert.deepEqual(JSON.parse(withNew.stdout), list);
});

test('jobs create, runs --watch until the run completes, runs and jobs list it', async () => {
  const { app01 } = await serverIds();
  const created = await client([
    'jobs',
    'create',
    app01!,
    '--frequency',
    '60',
    '--description',
    'cli test',
    '--json',
  ]);
  assert.equal(created.code, 0, created.stderr);
  const { replicationJobId: jobId } = JSON.parse(created.stdout) as { replicationJobId: string };
  assert.match(jobId, /^sms-job-/);

  const watched = await client(['runs', jobId, '--watch', '--interval', '200ms', '--timeout', '120s']);
  assert.equal(watched.code, 0, watched.stderr);
  const lines = watched.stdout.trimEnd().split('\n');
  for (const line of lines.slice(0, -1)) {
    assert.match(
      line,
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (sms-run-[0-9a-f]{17} (PENDING|ACTIVE|COMPLETED)|waiting)/,
      line,
    );
  }
  const last = /^(sms-run-[0-9a-f]{17}) COMPLETED (ami-[0-9a-f]{17})$/.exec(lines.at(-1)!);
  assert.ok(last, watched.stdout);
  const [, runId, amiId] = last;

  const runs = await client(['runs', jobId, '--json']);
  assert.equal(runs.code, 0, runs.stderr);
  const runList = JSON.parse(runs.stdout) as { replicationRunId: string; state: string; amiId?: string }[];
  assert.deepEqual(
    runList.map((r) => [r.replicationRunId, r.state, r.amiId]),
    [[runId, 'COMPLETED', amiId]],
  );
  const runTable = await client(['runs', jobId]);
  assert.equal(runTable.code, 0, runTable.stderr);
  assert.match(runTable.stdout, /^RUN ID\s+TYPE\s+STATE/);
  assert.match(runTable.stdout, new RegExp(`${runId}\\s+AUTOMATIC\\s+COMPLETED\\s+.*${amiId}`));

  const jobs = await client(['jobs', '--json']);
  assert.equal(jobs.code, 0, jobs.stderr);
  const job = (
    JSON.parse(jobs.stdout) as { replicationJobId: string; latestAmiId?: string; frequency?: number }[]
  ).find((j) => j.replicationJobId === jobId);
  assert.equal(job?.latestAmiId, amiId);
  assert.equal(job?.frequency, 60);
  const jobTable = await client(['jobs']);
  assert.match(jobTable.stdout, new RegExp(`${jobId}\\s+${app01}\\s+app01\\s+ACTIVE\\s+60\\s`));

  // An on-demand run, watched from the start, as JSON lines.
  const started = await client(['runs', 'start', jobId, '--watch', '--json', '--interval', '200ms']);
  assert.equal(started.code, 0, started.stderr);
  const updates = started.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { replicationRunId: string; state: string; type: string; amiId?: string });
  assert.ok(updates.length >= 1);
  assert.equal(new Set(updates.map((u) => u.replicationRunId)).size, 1, 'one run followed');
  assert.notEqual(updates[0]!.replicationRunId, runId);
  assert.equal(updates.at(-1)!.state, 'COMPLETED');
  assert.equal(updates.at(-1)!.type, 'ON_DEMAND');
  assert.match(updates.at(-1)!.amiId ?? '', /^ami-/);
});

test('a failed run ends the watch with FERRY_RUN_FAILED and the run’s own code; --timeout bounds the wait', async () => {
  const { broken01 } = await serverIds();
  const seed = new Date(Date.now() + 24 * 3600_000).toISOString();
  const created = await client(['jobs', 'create', broken01!, '--frequency', '60', '--seed', seed]);
  assert.equal(created.code, 0, created.stderr);
  const jobId = created.stdout.trim();

  // No run yet (the seed is tomorrow): the watch waits, and gives up at --timeout.
  const waited = await client(['runs', jobId, '--watch', '--timeout', '1s', '--interval', '200ms']);
  assertCleanFailure(waited, 'FERRY_WATCH_TIMEOUT');
  assert.equal(waited.code, 130);
  assert.match(waited.stdout, /waiting for a run of/);

  await rm(join(images, 'broken01', 'disk.img'));
  const failed = await client(['runs', 'start', jobId, '--watch', '--interval', '200ms']);
  assertCleanFailure(failed, 'FERRY_RUN_FAILED');
  assert.equal(failed.code, 8);
  assert.match(failed.stdout, /^started sms-run-/);
  assert.match(failed.stdout, / FAILED /);

  const json = await client(['runs', jobId, '--watch', '--json']);
  assert.equal(json.code, 8);
  const { error } = JSON.parse(json.stderr) as { error: { code: string; details: Record<string, string> } };
  assert.equal(error.code, 'FERRY_RUN_FAILED');
  assert.equal(error.details.state, 'FAILED');
  assert.match(error.details.runCode ?? '', /^FERRY_[A-Z_]+$/);
  const last = JSON.parse(json.stdout.trimEnd().split('\n').at(-1)!) as {
    state: string;
    replicationRunId: string;
  };
  assert.equal(last.state, 'FAILED');
  assert.equal(last.replicationRunId, error.details.replicationRunId);
});

test('wrong keys, unknown jobs, bad arguments and a closed port are coded errors, never hangs', async () => {
  const unknown = await client(['runs', 'sms-job-00000000000000000']);
  assertCleanFailure(unknown, 'FERRY_JOB_NOT_FOUND');
  assert.equal(unknown.code, 7);

  const wrong = await client(['servers'], { AWS_SECRET_ACCESS_KEY: 'x'.repeat(40) });
  assertCleanFailure(wrong, 'FERRY_AUTH_SIGNATURE_MISMATCH');
  assert.equal(wrong.code, 6);
  const unknownKey = await client(['jobs'], { AWS_ACCESS_KEY_ID: 'AKIAAAAAAAAAAAAAAAAA' });
  assertCleanFailure(unknownKey, 'FERRY_AUTH_UNKNOWN_KEY');

  const noEndpoint = await client(['servers'], {
    FERRY_ENDPOINT: '',
    AWS_ENDPOINT_URL_SMS: '',
    AWS_ENDPOINT_URL: '',
  });
  assertCleanFailure(noEndpoint, 'FERRY_INVALID_ARGUMENT');
  assert.equal(noEndpoint.code, 2);
  const noKey = await client(['servers'], { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' });
  assertCleanFailure(noKey, 'FERRY_INVALID_ARGUMENT');
  assertCleanFailure(await client(['jobs', 'create', 's-1']), 'FERRY_INVALID_ARGUMENT');
  assertCleanFailure(
    await client(['jobs', 'create', 's-1', '--frequency', '1', '--seed', 'tomorrow']),
    'FERRY_INVALID_ARGUMENT',
  );
  assertCleanFailure(await client(['runs', 'j', '--run', 'r']), 'FERRY_INVALID_ARGUMENT');
  assertCleanFailure(await client(['runs', 'j', '--watch', '--interval', '1ms']), 'FERRY_INVALID_ARGUMENT');
  assertCleanFailure(await client(['servers', 'frobnicate']), 'FERRY_INVALID_ARGUMENT');

  // https:// to a plain-HTTP server.
  const scheme = await client(['servers'], { FERRY_ENDPOINT: server.url.replace('http:', 'https:') });
  assertCleanFailure(scheme, 'FERRY_API_TLS_UNTRUSTED');

  const port = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const closed = await client(['servers'], { FERRY_ENDPOINT: `http://127.0.0.1:${port}` }, 20_000);
  assertCleanFailure(closed, 'FERRY_API_UNREACHABLE');
  assert.equal(closed.code, 8);
  assert.ok(closed.ms < 15_000, `took ${closed.ms} ms`);
});
