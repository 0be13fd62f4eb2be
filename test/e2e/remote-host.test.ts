/**
 * End to end, a remote launch host (docs/launch.md, "Launch hosts"): a real `ferry server`
 * with a link listener and a real `ferry host` process enrolled with a one-time host token
 * over mutual TLS on loopback. A server's launch options place it on the host; LaunchApp
 * boots the image there — read over the link by the host's own NBD server, nothing copied
 * — and the console comes back through the API. A host killed with -9 and started again
 * leaves no QEMU behind and the server marks its instance terminated; a launch placed on a
 * host that is down fails with a coded reason; TerminateApp removes the host's files.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SMS } from '@aws-sdk/client-sms';
import { oneServerApp, ferryOk, replicate, settledLaunch } from '../helpers/apps.js';
import { bootTools } from '../helpers/boot.js';
import { ferry, tempDir } from '../helpers/qemu.js';
import { startLinked, type ConnectorProcess } from '../helpers/remote-connector.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { smsClient } from '../helpers/sms.js';
import { until } from '../helpers/wait.js';

const run = promisify(execFile);
let server: RunningServer;
let sms: SMS;
let stateDir: string;
const children = new Set<ChildProcess>();

function startHost(token?: string): ConnectorProcess {
  const h = startLinked(server, 'host', stateDir, [], token);
  children.add(h.child);
  return { ...h, out: () => h.out() + h.err() };
}

interface Listed {
  instanceId: string;
  appId: string;
  state: string;
  statusMessage: string;
  hostId?: string;
}

async function instances(appId: string): Promise<Listed[]> {
  return (JSON.parse(await ferryOk(server, ['instances', 'list', '--json'])) as Listed[]).filter(
    (i) => i.appId === appId,
  );
}

/** QEMU processes whose command line names a directory under `dir`. */
async function qemusUnder(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.startsWith('qemu-system') || cmd.includes('/qemu-system'))
      if (cmd.includes(dir)) out.push(Number(pid));
  }
  return out;
}

before(async () => {
  const images = await tempDir('ferry-remote-host-');
  await mkdir(join(images, 'web'));
  await run('bash', [join(bootTools(), 'make-bootable.sh'), join(images, 'web', 'boot.raw'), 'far-away'], {
    maxBuffer: 1 << 24,
  });
  server = await startServer({
    imagesDir: images,
    args: ['--connector-listen', '127.0.0.1:0', '--frequency-unit', 'minutes'],
    timeoutMs: 60_000,
  });
  sms = smsClient(server);
  stateDir = join(await tempDir('ferry-host-state-'), 'host');
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  // A failed run may leave the host's QEMUs (a killed `ferry host` does not take them along).
  if (stateDir) for (const pid of await qemusUnder(stateDir)) process.kill(pid, 'SIGKILL');
  sms?.destroy();
  await server?.stop();
});

test('a launch placed on a remote host boots there from the image over the link; kill -9 leaves nothing', async () => {
  const token = JSON.parse(await ferryOk(server, ['hosts', 'enrol', '--json'])) as { enrolmentToken: string };
  let host = startHost(token.enrolmentToken);
  await until('the host link', () => host.out().includes('connected to'), 60_000);
  const [listed] = JSON.parse(await ferryOk(server, ['hosts', 'list', '--json'])) as {
    hostId: string;
    connected: boolean;
    facts: { qemu: boolean; cpus: number };
  }[];
  assert.ok(listed, 'the host is listed');
  assert.match(listed.hostId, /^h-[0-9a-f]{17}$/);
  assert.equal(listed.connected, true);
  assert.equal(listed.facts.qemu, true);
  assert.ok(listed.facts.cpus >= 1);
  // The token was for one enrolment only.
  const again = await ferry(['hosts', 'list', '--data-dir', server.dataDir, '--json']);
  assert.equal(again.code, 0, again.stderr);

  const serverId = (await sms.getServers({})).serverList![0]!.serverId!;
  await replicate(sms, serverId);
  const appId = await oneServerApp(sms, 'faraway', serverId, { logicalId: 'Web' });
  await ferryOk(server, ['apps', 'options', appId, serverId, '--host', listed.hostId]);
  await sms.launchApp({ appId });
  const summary = await settledLaunch(sms, appId);
  assert.equal(summary.launchStatus, 'LAUNCHED', summary.launchStatusMessage);
  const [inst] = await instances(appId);
  assert.ok(inst);
  assert.equal(inst.hostId, listed.hostId);
  assert.equal(inst.state, 'running');
  // The instance lives in the host's directory, not the server's.
  const hostDir = join(stateDir, 'instances', inst.instanceId);
  assert.ok((await readdir(hostDir)).includes('overlay-0.qcow2'));
  assert.deepEqual(await readdir(join(server.dataDir, 'instances')).catch(() => []), []);
  await until(
    'the marker on the console (through the API)',
    async () =>
      (await ferryOk(server, ['instances', 'console', inst.instanceId])).includes(
        'FERRY-BOOT-MARKER: far-away',
      ),
    240_000,
  );

  // kill -9 the host process: its next start removes the orphan (it read through the dead one).
  host.child.kill('SIGKILL');
  await host.exited;
  host = startHost();
  await until('the host back', () => host.out().includes('connected to'), 60_000);
  await until(
    'the instance marked terminated',
    async () => (await instances(appId))[0]!.state === 'terminated',
    30_000,
  );
  assert.match((await instances(appId))[0]!.statusMessage, /no longer runs it/);
  assert.deepEqual(await qemusUnder(join(stateDir, 'instances')), [], 'no QEMU left on the host');
  await sms.terminateApp({ appId });

  // Launched again, then terminated: the host's files go.
  await sms.launchApp({ appId });
  assert.equal((await settledLaunch(sms, appId)).launchStatus, 'LAUNCHED');
  const second = (await instances(appId)).find((i) => i.state === 'running')!;
  await sms.terminateApp({ appId });
  assert.equal((await sms.getApp({ appId })).appSummary!.launchStatus, 'TERMINATED');
  await assert.rejects(readdir(join(stateDir, 'instances', second.instanceId)));
  assert.deepEqual(await qemusUnder(join(stateDir, 'instances')), []);

  // The host down: a launch placed on it fails with the reason, and leaves nothing.
  host.child.kill('SIGTERM');
  await host.exited;
  await sms.launchApp({ appId });
  const failed = await settledLaunch(sms, appId);
  assert.equal(failed.launchStatus, 'LAUNCH_FAILED');
  assert.match(failed.launchStatusMessage ?? '', /FERRY_LAUNCH_HOST_UNAVAILABLE/);
});
