import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startFakeAgent, type FakeAgent, type FakeAgentOptions } from '../../../test/helpers/fake-qga.js';
import { waitForPath } from '../../../test/helpers/kvm.js';
import { leftovers, qmp, rejectsWith, setup } from '../../../test/helpers/kvm-connector.js';
import { qemuImg } from '../../../test/helpers/qemu.js';
import { createKvmConnector } from './connector.js';
import { blockDirtyBitmapAdd, queryJobs } from './qmp/index.js';

const UUID = '7a1e3c5b-9d2f-4b6a-8c0e-1f3a5b7c9d24';

/** A paused VM on one qcow2 disk, with a second QMP monitor outside qmpDir for the test to look through. */
async function startVm(root: string, qmpDir: string, name: string, extra: string[] = []) {
  const disk = join(root, `${name}.qcow2`);
  await qemuImg('create', '-q', '-f', 'qcow2', disk, '64M');
  const qmpPath = join(qmpDir, `${name}.qmp`);
  const probe = join(root, `${name}-probe.qmp`);
  // prettier-ignore
  const proc = spawn('qemu-system-x86_64', [
    '-name', name, '-uuid', UUID, '-nodefaults', '-display', 'none', '-accel', 'tcg', '-m', '64', '-S',
    '-qmp', `unix:${qmpPath},server=on,wait=off`,
    '-qmp', `unix:${probe},server=on,wait=off`,
    '-drive', `file=${disk},format=qcow2,if=none,id=drive0,node-name=disk0`,
    '-device', 'virtio-blk-pci,drive=drive0',
    ...extra,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const handle = {
    proc,
    stderr: () => stderr,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await new Promise((r) => proc.once('exit', r));
      }
    },
  };
  try {
    await waitForPath(qmpPath, handle);
    await waitForPath(probe, handle);
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return { ...handle, qmp: qmpPath, probe };
}

test('guest agent: freeze before the transaction, thaw after — or thaw and a crash-consistent snapshot when freezing fails, hangs, or the transaction fails', async () => {
  const { root, qmpDir, stateDir } = await setup();
  const vm = await startVm(root, qmpDir, 'ga');
  let agent: FakeAgent | undefined;
  try {
    const c = await createKvmConnector({
      connectorId: 'c',
      version: '0',
      qmpDir,
      stateDir,
      freezeTimeoutMs: 500,
    });
    const events: string[] = [];
    /** A fake agent at ga.qga; on freeze and thaw it looks at QEMU through the probe monitor. */
    const agentWith = async (o: FakeAgentOptions) => {
      await agent?.close();
      events.length = 0;
      agent = await startFakeAgent(join(qmpDir, 'ga.qga'), {
        ...o,
        onCommand: async (cmd, n) => {
          if (cmd === 'guest-sync-delimited') return void events.push(cmd);
          const jobs = (await qmp(vm.probe, queryJobs)).filter((j) => j.id.startsWith('ferry-'));
          events.push(`${cmd} (${jobs.length > 0 ? 'after' : 'before'} the transaction)`);
          await o.onCommand?.(cmd, n);
        },
      });
      return agent;
    };
    const FREEZE_BEFORE = 'guest-fsfreeze-freeze (before the transaction)';

    // Answers: application-consistent; the transaction ran between freeze and thaw.
    await agentWith({ freeze: 'answer', fsCount: 2 });
    const s1 = await c.source.snapshot!(UUID, { runId: 'ga-1' });
    assert.deepEqual(events, [
      'guest-sync-delimited',
      FREEZE_BEFORE,
      'guest-fsfreeze-thaw (after the transaction)',
    ]);
    assert.equal(agent!.frozen, false);
    assert.equal(s1.warnings.length, 1, s1.warnings.join('\n'));
    assert.match(s1.warnings[0]!, /^application-consistent: the guest agent froze 2 file systems/);
    await c.source.release!(UUID, s1.id, true);

    // Errors, or never answers: thawed first, then the transaction; crash-consistent and why.
    for (const [freeze, why] of [
      ['error', /^crash-consistent: guest-fsfreeze-freeze failed \(.*Device or resource busy/],
      ['hang', /^crash-consistent: guest-fsfreeze-freeze did not finish within 0\.5 s/],
    ] as const) {
      await agentWith({ freeze });
      const s = await c.source.snapshot!(UUID, { runId: `ga-${freeze}`, since: 'ferry-ga-1' });
      assert.deepEqual(
        events.filter((e) => e !== 'guest-sync-delimited'),
        [FREEZE_BEFORE, 'guest-fsfreeze-thaw (before the transaction)'],
        freeze,
      );
      assert.equal(agent!.frozen, false, `${freeze}: thawed`);
      assert.match(s.warnings[0] ?? '', why);
      assert.equal(s.disks[0]?.mode, 'changed', 'the snapshot itself is as usual');
      await c.source.release!(UUID, s.id, false);
    }

    // The transaction fails while the guest is frozen (a bitmap of the run's name is in
    // the way): thawed all the same, and nothing of the snapshot is left.
    await agentWith({
      freeze: 'answer',
      onCommand: async (cmd) => {
        if (cmd === 'guest-fsfreeze-freeze') {
          await qmp(vm.probe, (q) => blockDirtyBitmapAdd(q, { node: 'disk0', name: 'ferry-ga-bad' }));
        }
      },
    });
    await rejectsWith(
      c.source.snapshot!(UUID, { runId: 'ga-bad', since: 'ferry-ga-1' }),
      'FERRY_QMP_COMMAND_FAILED',
    );
    assert.equal(events[1], FREEZE_BEFORE);
    assert.ok(events.includes('guest-fsfreeze-thaw (before the transaction)'), events.join());
    assert.equal(agent!.frozen, false);
    assert.deepEqual(await leftovers(vm.qmp), {
      exports: [],
      jobs: [],
      nodes: [],
      bitmaps: ['disk0:ferry-ga-1'],
    });
    assert.deepEqual(await readdir(join(stateDir, UUID)), []);
  } catch (err) {
    process.stderr.write(`QEMU stderr: ${vm.stderr()}\n`);
    throw err;
  } finally {
    await agent?.close();
    await vm.stop();
  }
});

test('guest agent: the process dies while the guest is frozen — the next attempt thaws it first', async () => {
  const { root, qmpDir, stateDir } = await setup();
  const vm = await startVm(root, qmpDir, 'gb');
  let child: ChildProcess | undefined;
  const events: string[] = [];
  const agent = await startFakeAgent(join(qmpDir, 'gb.qga'), {
    freeze: 'answer',
    onCommand: async (cmd) => {
      events.push(cmd);
      // kill -9 of the snapshotting process between freeze and thaw.
      if (cmd === 'guest-fsfreeze-freeze' && child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await new Promise((r) => child!.once('exit', r));
      }
    },
  });
  try {
    const script = new URL('../../../test/helpers/kvm-snapshot-child.js', import.meta.url).pathname;
    child = spawn(process.execPath, [script, qmpDir, stateDir, UUID, 'gb-1'], { stdio: 'ignore' });
    await new Promise((r) => child!.once('exit', r));
    assert.equal(child.signalCode, 'SIGKILL', 'the child died at the freeze');
    // The fake agent carries out the freeze once the child is gone.
    for (let i = 0; i < 100 && !agent.frozen; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(agent.frozen, true, 'the guest was left frozen');
    const c = await createKvmConnector({ connectorId: 'c', version: '0', qmpDir, stateDir });
    const s = await c.source.snapshot!(UUID, { runId: 'gb-1' });
    assert.equal(agent.frozen, false);
    assert.deepEqual(events, [
      'guest-sync-delimited',
      'guest-fsfreeze-freeze', // the child, killed here
      'guest-sync-delimited',
      'guest-fsfreeze-thaw', // the abandoned freeze, undone
      'guest-sync-delimited',
      'guest-fsfreeze-freeze',
      'guest-fsfreeze-thaw',
    ]);
    assert.match(s.warnings[0] ?? '', /^application-consistent/);
    await c.source.release!(UUID, s.id, false);
    assert.deepEqual(await leftovers(vm.qmp), { exports: [], jobs: [], nodes: [], bitmaps: [] });
  } finally {
    child?.kill('SIGKILL');
    await agent.close();
    await vm.stop();
  }
});

test('guest agent: the documented QEMU channel with no agent running in the guest — crash-consistent after a bounded wait', async () => {
  const { root, qmpDir, stateDir } = await setup();
  // The options docs/connectors/kvm.md gives users; the paused guest runs no qemu-ga.
  // prettier-ignore
  const vm = await startVm(root, qmpDir, 'gc', [
    '-chardev', `socket,id=qga0,path=${join(qmpDir, 'gc.qga')},server=on,wait=off`,
    '-device', 'virtio-serial',
    '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
  ]);
  try {
    const c = await createKvmConnector({ connectorId: 'c', version: '0', qmpDir, stateDir });
    const t0 = Date.now();
    const s = await c.source.snapshot!(UUID, { runId: 'gc-1' });
    assert.match(
      s.warnings[0] ?? '',
      /^crash-consistent: the guest agent did not answer guest-sync-delimited/,
    );
    assert.ok(Date.now() - t0 < 10_000, `bounded: ${Date.now() - t0} ms`);
    await c.source.release!(UUID, s.id, false);
    assert.deepEqual(await leftovers(vm.qmp), { exports: [], jobs: [], nodes: [], bitmaps: [] });
  } catch (err) {
    process.stderr.write(`QEMU stderr: ${vm.stderr()}\n`);
    throw err;
  } finally {
    await vm.stop();
  }
});
