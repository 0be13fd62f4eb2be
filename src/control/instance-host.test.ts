/**
 * What a launch host process leaves to the next one (InstanceHost.stop, keepOnStop) and
 * what it takes back (recover), on a real database with stand-in instances — no QEMU:
 * which instances are detached or terminated under each policy, and why a left-over
 * instance is terminated (its record says it in statusMessage) or taken back stopped with
 * its image served again. Real QEMU: src/launch/instance/adopt.integ.test.ts and
 * test/e2e/test-instance-restart.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openTestDatabase } from '../../test/helpers/databases.js';
import { storeImage } from '../../test/helpers/launch.js';
import { missing } from '../../test/helpers/leftovers.js';
import { tempDir } from '../../test/helpers/qemu.js';
import { repositories, type Database, type InstanceRecord } from '../db/index.js';
import { ManualClock } from './clock.js';
import { imagesInUse } from './images-in-use.js';
import { InstanceHost, type Instance } from './instance-host.js';

function record(id: string, dir: string, imageId: string, state: string): InstanceRecord {
  return {
    instanceId: id,
    appId: null,
    serverId: 's-1',
    imageId,
    instanceType: 't3.micro',
    state,
    statusMessage: '',
    dir,
    pid: null,
    launchOrder: null,
    hostId: null,
    createdAt: 1,
    updatedAt: 1,
  };
}

/** A stand-in instance that records what was done to it. */
function fake(state: string, materialized: boolean) {
  const done: string[] = [];
  const inst: Instance = {
    state,
    materialized,
    exited: new Promise(() => {}),
    pid: undefined,
    stop: async () => undefined,
    start: async () => undefined,
    terminate: async () => void done.push('terminate'),
    materialize: async () => undefined,
    consoleText: async () => '',
    detach: async () => void done.push('detach'),
  };
  return { inst, done };
}

const CASES = [
  ['running', false],
  ['stopped', false],
  ['running', true],
  ['stopped', true],
  ['pending', false],
] as const;

async function stopWith(db: Database, keepOnStop: InstanceHost['keepOnStop']) {
  const host = new InstanceHost(db, new ManualClock(1000));
  host.keepOnStop = keepOnStop;
  const r = repositories(db);
  const out = new Map<string, string[]>();
  for (const [n, [state, materialized]] of CASES.entries()) {
    const id = `i-${keepOnStop.stopped}${keepOnStop.testInstances}${n}`;
    await r.instances.insert(record(id, `/nonexistent/${id}`, 'ami-1', state));
    const { inst, done } = fake(state, materialized);
    host.add(id, inst);
    out.set(`${state}${materialized ? ' standalone' : ' test'}`, done);
  }
  await host.stop();
  return Object.fromEntries([...out].map(([k, v]) => [k, v.join()]));
}

test('stop() leaves to the next process what keepOnStop says and terminates the rest', async () => {
  const t = await openTestDatabase('sqlite');
  try {
    // The default (a library caller, PostgreSQL): only running standalone instances stay.
    assert.deepEqual(await stopWith(t.db, { stopped: false, testInstances: false }), {
      'running test': 'terminate',
      'stopped test': 'terminate',
      'running standalone': 'detach',
      'stopped standalone': 'terminate',
      'pending test': 'terminate',
    });
    // `ferry server` on SQLite: everything running or stopped stays.
    assert.deepEqual(await stopWith(t.db, { stopped: true, testInstances: true }), {
      'running test': 'detach',
      'stopped test': 'detach',
      'running standalone': 'detach',
      'stopped standalone': 'detach',
      'pending test': 'terminate',
    });
    // --terminate-test-instances-on-stop: standalone ones stay, test ones end.
    assert.deepEqual(await stopWith(t.db, { stopped: true, testInstances: false }), {
      'running test': 'terminate',
      'stopped test': 'terminate',
      'running standalone': 'detach',
      'stopped standalone': 'detach',
      'pending test': 'terminate',
    });
    const kept = await repositories(t.db).instances.get('i-truetrue0');
    assert.equal(kept?.state, 'running');
    assert.match(kept!.statusMessage, /serves its image again/);
    assert.equal((await repositories(t.db).instances.get('i-truefalse0'))?.state, 'terminated');
  } finally {
    await t.close();
  }
});

test('recover() takes a stopped test instance back with its image served; the others end with the reason', async () => {
  const t = await openTestDatabase('sqlite');
  const img = await storeImage(Buffer.alloc(1 << 20, 3));
  const host = new InstanceHost(t.db, new ManualClock(1000), img.repo);
  const r = repositories(t.db);
  const root = await tempDir('ferry-recover-');
  const dirOf = async (id: string) => {
    const dir = join(root, id);
    await mkdir(dir);
    await writeFile(join(dir, 'qemu.json'), '{}');
    await writeFile(join(dir, 'overlay-0.qcow2'), '');
    return dir;
  };
  try {
    const stopped = await dirOf('i-stopped');
    await r.instances.insert(record('i-stopped', stopped, img.imageId, 'stopped'));
    const gone = await dirOf('i-gone');
    await r.instances.insert(record('i-gone', gone, 'ami-0000000000000dead', 'stopped'));
    const dead = await dirOf('i-dead');
    await r.instances.insert(record('i-dead', dead, img.imageId, 'running'));
    const pending = await dirOf('i-pending');
    await r.instances.insert(record('i-pending', pending, img.imageId, 'pending'));

    await host.recover();

    const back = (await r.instances.get('i-stopped'))!;
    assert.equal(back.state, 'stopped');
    assert.match(back.statusMessage, /image served again/);
    assert.ok(!(await missing(join(stopped, 'nbd.sock'))), 'its image is served where the overlay looks');
    assert.equal(host.live('i-stopped')?.state, 'stopped');
    assert.equal(host.isMaterialized('i-stopped'), false);

    const why = async (id: string) => {
      const rec = (await r.instances.get(id))!;
      assert.equal(rec.state, 'terminated');
      assert.ok(await missing(rec.dir), `${id}: its directory is removed`);
      return rec.statusMessage;
    };
    assert.match(await why('i-gone'), /its image ami-0000000000000dead cannot be read/);
    assert.match(await why('i-dead'), /its QEMU no longer runs/);
    assert.match(await why('i-pending'), /it was pending/);

    await host.terminateInstance('i-stopped');
    assert.ok(await missing(stopped), 'terminate removes what was taken back');
    assert.equal((await r.instances.get('i-stopped'))?.state, 'terminated');
  } finally {
    await t.close();
  }
});

test('retention keeps the image of a test instance left running for the next process', async () => {
  const t = await openTestDatabase('sqlite');
  try {
    const host = new InstanceHost(t.db, new ManualClock(1000));
    host.keepOnStop = { stopped: true, testInstances: true };
    await repositories(t.db).instances.insert(record('i-kept', '/nonexistent/i-kept', 'ami-kept', 'running'));
    host.add('i-kept', fake('running', false).inst);
    await host.stop();
    // Its QEMU still reads the image through the next process's export.
    assert.ok((await imagesInUse(t.db)).has('ami-kept'));
    const next = new InstanceHost(t.db, new ManualClock(2000));
    await next.terminateInstance('i-kept');
    assert.ok(!(await imagesInUse(t.db)).has('ami-kept'), 'released once terminated');
  } finally {
    await t.close();
  }
});
