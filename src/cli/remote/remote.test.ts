import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { progressText } from '../../control/index.js';
import { FerryError } from '../../errors/index.js';
import { parseEndpoint, parseKeyFile, resolveConnection } from './connection.js';
import { fromSdkError } from './errors.js';
import { allPages } from './pages.js';
import { parseStageProgress } from './progress.js';
import { describeProgress, lineFor, pick } from './watch.js';
import { cell, renderTable } from '../table.js';

const MIB = 1024 * 1024;

test("parses back exactly what the server's run executor writes", () => {
  const p = parseStageProgress(
    progressText({ bytesDone: 45 * MIB, bytesTotal: 100 * MIB, bytesPerSecond: 5 * MIB, etaSeconds: 11 }),
  );
  assert.deepEqual(p, {
    done: 45 * MIB,
    total: 100 * MIB,
    bytesRead: 45 * MIB,
    elapsedMs: 0,
    rate: 5 * MIB,
    etaMs: 11_000,
  });
  const noEta = parseStageProgress(progressText({ bytesDone: 0, bytesTotal: 3 * MIB, bytesPerSecond: 0 }));
  assert.equal(noEta?.etaMs, undefined);
  assert.equal(noEta?.total, 3 * MIB);
  // Small disks: 0.1 MiB resolution, the percentage keeps the bar moving.
  const small = parseStageProgress(
    progressText({ bytesDone: 20_000, bytesTotal: 40_000, bytesPerSecond: 1 }),
  );
  assert.ok(small && small.done <= small.total);
  for (const other of [undefined, '', '100%', '45%', '45% (x MiB of y MiB, 1 MiB/s)', '9'.repeat(5000)])
    assert.equal(parseStageProgress(other), undefined, String(other).slice(0, 20));
  assert.equal(describeProgress('100%'), '100%');
  assert.match(
    describeProgress(
      progressText({ bytesDone: 50 * MIB, bytesTotal: 100 * MIB, bytesPerSecond: MIB, etaSeconds: 50 }),
    ),
    /^50% 50\.0 MiB\/100\.0 MiB 1\.00 MiB\/s ETA 00:50$/,
  );
});

test('endpoints are a scheme, host and port', () => {
  assert.equal(parseEndpoint('https://127.0.0.1:8443'), 'https://127.0.0.1:8443');
  assert.equal(parseEndpoint('http://[::1]:8080/'), 'http://[::1]:8080');
  for (const bad of [undefined, '', 'ftp://h:1', 'h:1', 'https://u:p@h:1', 'https://h:1/x', 'https://h:1/?a'])
    assert.throws(() => parseEndpoint(bad), { code: 'FERRY_INVALID_ARGUMENT' }, String(bad));
});

test('credentials: the key file as `keys create --json` prints it, else the AWS variables', async () => {
  assert.deepEqual(parseKeyFile('{"accessKeyId":"AKIA1","secretAccessKey":"s"}', 'f'), {
    accessKeyId: 'AKIA1',
    secretAccessKey: 's',
  });
  assert.equal(
    parseKeyFile('{"accessKeyId":"ASIA1","secretAccessKey":"s","sessionToken":"t","expiration":"x"}', 'f')
      .sessionToken,
    't',
  );
  for (const bad of ['', 'null', '[]', '{"accessKeyId":"a"}', '{"accessKeyId":"a b","secretAccessKey":"s"}'])
    assert.throws(() => parseKeyFile(bad, 'f'), { code: 'FERRY_INVALID_ARGUMENT' }, bad);

  const dir = await mkdtemp(join(tmpdir(), 'ferry-remote-'));
  try {
    const file = join(dir, 'key.json');
    await writeFile(file, '{"accessKeyId":"AKIAFILE","secretAccessKey":"fromfile"}\n');
    const env = {
      FERRY_ENDPOINT: 'http://127.0.0.1:1',
      AWS_ACCESS_KEY_ID: 'AKIAENV',
      AWS_SECRET_ACCESS_KEY: 'fromenv',
      AWS_SESSION_TOKEN: 'tok',
    };
    const fromEnv = await resolveConnection({}, env);
    assert.deepEqual(fromEnv, {
      endpoint: 'http://127.0.0.1:1',
      credentials: { accessKeyId: 'AKIAENV', secretAccessKey: 'fromenv', sessionToken: 'tok' },
    });
    const fromFile = await resolveConnection({ 'access-key-file': file, endpoint: 'https://h:2' }, env);
    assert.equal(fromFile.credentials.accessKeyId, 'AKIAFILE');
    assert.equal(fromFile.endpoint, 'https://h:2');
    await assert.rejects(resolveConnection({}, { FERRY_ENDPOINT: 'http://h:1' }), {
      code: 'FERRY_INVALID_ARGUMENT',
      message: /no credentials/,
    });
    await assert.rejects(resolveConnection({ 'access-key-file': join(dir, 'none') }, env), {
      code: 'FERRY_FILE_NOT_FOUND',
    });
    await writeFile(join(dir, 'big.json'), Buffer.alloc(65 * 1024, 0x20));
    await assert.rejects(resolveConnection({ 'access-key-file': join(dir, 'big.json') }, env), {
      code: 'FERRY_INVALID_ARGUMENT',
      message: /at most/,
    });
    await assert.rejects(resolveConnection({ 'ca-bundle': file }, env), {
      code: 'FERRY_INVALID_ARGUMENT',
      message: /no PEM certificate/,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('SDK errors become the codes the server started from', async () => {
  const { ReplicationJobNotFoundException, InvalidParameterException, InternalError } =
    await import('@aws-sdk/client-sms');
  const meta = (status: number) => ({ $metadata: { httpStatusCode: status } });
  const nf = fromSdkError(new ReplicationJobNotFoundException({ message: 'no job', ...meta(400) }), 'e');
  assert.equal(nf.code, 'FERRY_JOB_NOT_FOUND');
  assert.equal(nf.message, 'no job');
  assert.equal(
    fromSdkError(new InvalidParameterException({ message: 'bad', ...meta(400) }), 'e').code,
    'FERRY_INVALID_ARGUMENT',
  );
  assert.equal(
    fromSdkError(new InternalError({ message: 'x', ...meta(500) }), 'e').code,
    'FERRY_API_SERVER_ERROR',
  );
  const auth = Object.assign(new Error('The request signature we calculated does not match'), {
    name: 'InvalidSignatureException',
    $fault: 'client',
    ...meta(403),
  });
  assert.equal(fromSdkError(auth, 'e').code, 'FERRY_AUTH_SIGNATURE_MISMATCH');
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  const r = fromSdkError(refused, 'http://127.0.0.1:1');
  assert.equal(r.code, 'FERRY_API_UNREACHABLE');
  assert.equal(r.retryable, true);
  const tls = Object.assign(new Error('self-signed certificate in certificate chain'), {
    code: 'SELF_SIGNED_CERT_IN_CHAIN',
  });
  assert.equal(fromSdkError(tls, 'e').code, 'FERRY_API_TLS_UNTRUSTED');
  assert.equal(fromSdkError(new Error('???'), 'e').code, 'FERRY_API_SERVER_ERROR');
  const own = fromSdkError(
    new FerryError({ code: 'FERRY_X', kind: 'io', retryable: true, summary: 's' }),
    'e',
  );
  assert.equal(own.code, 'FERRY_X');
});

test('paging follows tokens, and stops a server that repeats one', async () => {
  const pages: Record<string, { items: number[]; nextToken?: string }> = {
    '': { items: [1, 2], nextToken: 'a' },
    a: { items: [3], nextToken: 'b' },
    b: { items: [4] },
  };
  assert.deepEqual(await allPages(async (t) => pages[t ?? '']!), [1, 2, 3, 4]);
  await assert.rejects(
    allPages(async () => ({ items: [1], nextToken: 'same' })),
    { code: 'FERRY_API_SERVER_ERROR', message: /repeated/ },
  );
});

test('watch picks the active run, else the next pending, else the latest', () => {
  const r = (id: string, state: string) => ({ replicationRunId: id, state }) as never;
  assert.equal(pick([r('1', 'COMPLETED'), r('2', 'ACTIVE'), r('3', 'PENDING')])?.replicationRunId, '2');
  assert.equal(pick([r('1', 'COMPLETED'), r('2', 'PENDING'), r('3', 'PENDING')])?.replicationRunId, '2');
  assert.equal(pick([r('1', 'COMPLETED'), r('2', 'FAILED')])?.replicationRunId, '2');
  assert.equal(pick([]), undefined);
  const line = lineFor(
    {
      replicationRunId: 'sms-run-1',
      state: 'ACTIVE',
      stageDetails: { stage: 'Writing image' },
      statusMessage: 'line1\nline2',
    },
    progressText({ bytesDone: MIB, bytesTotal: 4 * MIB, bytesPerSecond: MIB, etaSeconds: 3 }),
    true,
  );
  assert.match(
    line,
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ sms-run-1 ACTIVE Writing image 25% 1\.00 MiB\/4\.00 MiB .* — line1 line2$/,
  );
});

test('tables align columns and keep untrusted text on one line', () => {
  assert.equal(
    renderTable(
      ['A', 'BB'],
      [
        ['xyz', 'q'],
        ['1', ''],
      ],
    ),
    'A    BB\nxyz  q\n1\n',
  );
  assert.equal(cell('a\x1b[2Jb\r\nc'), 'a [2Jb c');
  assert.equal(cell(undefined), '-');
  assert.equal(cell('x'.repeat(100), 10), `${'x'.repeat(9)}…`);
});
