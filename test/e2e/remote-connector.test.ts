/**
 * End to end, a remote connector (docs/connector-protocol.md): a real `ferry server` with
 * a connector link, a real `ferry connector` process enrolled with a one-time token, over
 * mutual TLS on loopback. The catalog and the runs go through the link; the connector is
 * killed (-9) mid-run and started again, and the run completes with the right image; a
 * used token and a disassociated connector are refused with coded errors.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SMS } from '@aws-sdk/client-sms';
import { makeImagesDir } from '../helpers/fixtures.js';
import { pseudoRandom, sha256File, tempDir } from '../helpers/qemu.js';
import { enrolmentToken, startConnector, type ConnectorProcess } from '../helpers/remote-connector.js';
import { exportedDiskSha, startServer, type RunningServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { smsClient, waitForRun } from '../helpers/sms.js';

let server: RunningServer;
let sms: SMS;
let images: string;
const children = new Set<ChildProcess>();

function connector(
  stateDir: string,
  token?: string,
  extra: readonly string[] = [],
  dir = images,
): ConnectorProcess {
  const c = startConnector(server, stateDir, ['--images-dir', dir, ...extra], token);
  children.add(c.child);
  return c;
}

/** SHA-256 of disk 0 of an image, exported as raw by the CLI from the server's data directory. */
async function exportSha(amiId: string): Promise<string> {
  return exportedDiskSha(server.dataDir, amiId, join(await tempDir('ferry-connector-export-'), 'disk0.raw'));
}
const token = () => enrolmentToken(server);

before(async () => {
  // Big enough that a run over the link takes a few seconds: the kill lands mid-read.
  images = await makeImagesDir(2, 160 << 20);
  server = await startServer({ args: ['--connector-listen', '127.0.0.1:0', '--frequency-unit', 'minutes'] });
  sms = smsClient(server);
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  sms?.destroy();
  await server?.stop();
});

test('enrolled over mutual TLS: catalog and replication through the link; kill -9 mid-run resumes', async () => {
  const state = join(await tempDir('ferry-connector-'), 'state');
  const t = await token();
  let c = connector(state, t);
  await until('the link', () => c.out().includes('connected to'));
  const identity = JSON.parse(await readFile(join(state, 'identity.json'), 'utf8')) as {
    id: string;
  };
  const connectors = (await sms.getConnectors({})).connectorList ?? [];
  assert.deepEqual(
    connectors.map((x) => [x.connectorId, x.status]),
    [[identity.id, 'HEALTHY']],
  );

  await sms.importServerCatalog({});
  const servers = (await sms.getServers({})).serverList ?? [];
  assert.equal(servers.length, 2);
  const vm01 = servers.find((s) => s.vmServer?.vmName === 'vm01')!;
  const { replicationJobId } = await sms.createReplicationJob({
    serverId: vm01.serverId!,
    seedReplicationTime: new Date(),
    frequency: 600,
  });
  const first = await waitForRun(sms, replicationJobId!, undefined, 180_000);
  assert.equal(first.state, 'COMPLETED', first.statusMessage);
  assert.equal(await exportSha(first.amiId!), await sha256File(join(images, 'vm01', 'disk0.img')));

  // The source changes; the next run starts; the connector dies mid-read and comes back.
  const f = await open(join(images, 'vm01', 'disk0.img'), 'r+');
  await f.write(pseudoRandom(1 << 20, 99), 0, 1 << 20, 40 << 20);
  await f.close();
  const { replicationRunId } = await sms.startOnDemandReplicationRun({ replicationJobId: replicationJobId! });
  await until('the run reading', async () => {
    const run = (
      await sms.getReplicationRuns({ replicationJobId: replicationJobId! })
    ).replicationRunList?.find((r) => r.replicationRunId === replicationRunId);
    assert.notEqual(run?.state, 'COMPLETED', 'the run ended before the connector could be killed');
    return run?.state === 'ACTIVE';
  });
  c.child.kill('SIGKILL');
  await c.exited;
  await new Promise((r) => setTimeout(r, 500));
  c = connector(state); // no token: the identity is in the state directory
  const second = await waitForRun(sms, replicationJobId!, replicationRunId, 180_000);
  assert.equal(second.state, 'COMPLETED', second.statusMessage);
  assert.equal(await exportSha(second.amiId!), await sha256File(join(images, 'vm01', 'disk0.img')));

  // DisassociateConnector cuts the link, and the certificate is refused from then on.
  await sms.disassociateConnector({ connectorId: identity.id });
  const code = await c.exited;
  assert.notEqual(code, 0);
  assert.match(c.err(), /FERRY_ENROLMENT_REFUSED/);
});

test('an enrolment token works once; a wrong one is refused', async () => {
  const t = await token();
  const a = connector(join(await tempDir('ferry-connector-'), 'a'), t);
  await until('the first link', () => a.out().includes('connected to'));
  const b = connector(join(await tempDir('ferry-connector-'), 'b'), t);
  assert.notEqual(await b.exited, 0);
  assert.match(b.err(), /FERRY_ENROLMENT_REFUSED/);
  const bad = connector(
    join(await tempDir('ferry-connector-'), 'c'),
    `fce_${createHash('sha256').update('x').digest('base64url')}`,
  );
  assert.notEqual(await bad.exited, 0);
  assert.match(bad.err(), /FERRY_ENROLMENT_REFUSED/);
  a.child.kill('SIGTERM');
  assert.equal(await a.exited, 0);
});

test('--max-concurrent-runs 1 runs one job at a time; --bandwidth paces the data', async () => {
  // Its own folder (new servers), served capped and paced.
  const own = await makeImagesDir(2, 160 << 20);
  const c = connector(
    join(await tempDir('ferry-connector-'), 'capped'),
    await token(),
    ['--max-concurrent-runs', '1', '--bandwidth', '64M'],
    own,
  );
  await until('the link', () => c.out().includes('connected to'));
  const known = new Set(((await sms.getServers({})).serverList ?? []).map((s) => s.serverId));
  await sms.importServerCatalog({});
  const mine = ((await sms.getServers({})).serverList ?? []).filter((s) => !known.has(s.serverId));
  assert.equal(mine.length, 2, 'both servers of the new folder catalogued through the new connector');
  const started = Date.now();
  const jobs = await Promise.all(
    mine.map(
      async (s) =>
        (
          await sms.createReplicationJob({
            serverId: s.serverId!,
            seedReplicationTime: new Date(),
            frequency: 600,
          })
        ).replicationJobId!,
    ),
  );
  let both = false;
  const done = new Set<string>();
  while (done.size < jobs.length) {
    const runs = await Promise.all(
      jobs.map(async (j) => (await sms.getReplicationRuns({ replicationJobId: j })).replicationRunList?.[0]),
    );
    const states = runs.map((r) => r?.state);
    if (states.filter((x) => x === 'ACTIVE').length > 1) both = true;
    states.forEach((x, i) => x === 'COMPLETED' && done.add(jobs[i]!));
    assert.ok(!states.includes('FAILED'), JSON.stringify(runs.map((r) => [r?.state, r?.statusMessage])));
    assert.ok(Date.now() - started < 240_000, 'runs finish');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(both, false, 'never two runs of the capped connector at once');
  // 2 × 160 MiB at 64 MiB/s: at least ~5 s, however fast the machine.
  const took = (Date.now() - started) / 1000;
  assert.ok(took >= 4.5, `two paced runs took ${took} s`);
  c.child.kill('SIGTERM');
  await c.exited;
});
