/**
 * Failure injection, end to end, for replication runs of running QEMU VMs (issue 6): a
 * real `ferry server --qmp-dir`, paused VMs on 64 MiB qcow2 disks the test knows byte
 * for byte, SDK-driven on-demand runs, and faults at random (seeded) points:
 *
 * 1. the server is killed (-9) and restarted on the same data directory;
 * 2. QEMU's NBD export (or its whole NBD server) goes away while the run reads;
 * 3. the VM quits (QMP `quit`) or QEMU is killed while the run reads.
 *
 * After each: the run completes (resumed/reattached) or fails with a coded status; QEMU
 * holds nothing of Ferry's but the one checkpoint bitmap; DATA_DIR/kvm holds no scratch
 * file; the next run completes, its image equals the disk (the model of every byte
 * written, and qemu-img's view of the file), and no change made before a failed run is
 * lost. Set FERRY_KVM_CRASH_SEED to replay a run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReplicationRun } from '@aws-sdk/client-sms';
import { queryBlockExports, queryNamedBlockNodes } from '../../src/connectors/kvm/index.js';
import { tempDir } from '../helpers/qemu.js';
import { checkpointOf, FerryHost, Guest, MiB, qmp, seeded, sha256 } from '../helpers/kvm-e2e.js';

const SEED = Number(process.env.FERRY_KVM_CRASH_SEED ?? Date.now() % 1_000_000);
const why = (s: string) => `${s} (FERRY_KVM_CRASH_SEED=${SEED})`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CODED = /^FERRY_[A-Z_]+: /;
/** Random data regions of every disk at the start: 40 of its 64 MiB. */
const INITIAL: [number, number][] = [
  [0, 8 * MiB],
  [12 * MiB, 16 * MiB],
  [36 * MiB, 8 * MiB],
  [52 * MiB, 8 * MiB],
];

interface Scenario {
  readonly dir: string;
  readonly qmpDir: string;
  readonly host: FerryHost;
  readonly rand: () => number;
  /** Stopped (SIGTERM, then SIGKILL) when the scenario ends, failed or not. */
  readonly guests: Guest[];
}

/** Sets up a scenario, runs it, prints every server log when it fails, and cleans up. */
async function scenario(name: string, seed: number, body: (s: Scenario) => Promise<void>): Promise<void> {
  const dir = await tempDir(`ferry-kvmf-${name}-`);
  const qmpDir = join(dir, 'qmp');
  await mkdir(qmpDir);
  const host = new FerryHost(join(dir, 'data'), qmpDir);
  const guests: Guest[] = [];
  try {
    await host.start();
    await body({ dir, qmpDir, host, rand: seeded(seed), guests });
  } catch (err) {
    process.stderr.write(`\n${name} failed (FERRY_KVM_CRASH_SEED=${SEED}); server logs:\n${host.logs()}\n`);
    throw err;
  } finally {
    await host.stopAll();
    for (const g of guests) await g.vm.stop();
  }
}

/** A guest that `scenario`'s cleanup stops even when the test fails. */
async function guest(s: Scenario, name: string, uuid: string): Promise<Guest> {
  const g = await Guest.create(s.dir, s.qmpDir, name, uuid, s.rand, INITIAL);
  s.guests.push(g);
  return g;
}

/** A few random writes through QEMU (a guest at work), `total` bytes in 64 KiB-aligned pieces. */
async function churn(g: Guest, rand: () => number, total: number): Promise<void> {
  const pieces = 1 + Math.floor(rand() * 3);
  for (let i = 0; i < pieces; i++) {
    const length = Math.max(64 * 1024, Math.floor(total / pieces / 65536) * 65536);
    const offset = Math.floor(rand() * ((g.model.length - length) / 65536)) * 65536;
    await g.write(rand, offset, length);
  }
}

/** Runs one on-demand run to completion; asserts it stored the disk as the model has it. */
async function completeRun(
  s: Scenario,
  g: Guest,
  job: string,
  expect: RegExp,
): Promise<{ run: ReplicationRun; ms: number }> {
  const want = sha256(g.model);
  const t0 = performance.now();
  const runId = await s.host.startRun(job);
  const run = await s.host.waitRun(job, runId);
  const ms = performance.now() - t0;
  assert.equal(run.state, 'COMPLETED', why(`run ${runId}: ${run.statusMessage}`));
  assert.match(run.statusMessage ?? '', expect, why(run.statusMessage ?? ''));
  assert.equal(await s.host.imageSha(run.amiId!, s.dir), want, why(`image ${run.amiId} = the disk`));
  assert.equal(await g.oracleSha(), want, why('the model is what qemu-img reads from the disk'));
  await g.assertClean(checkpointOf(runId), why);
  assert.deepEqual(await s.host.scratchFiles(g.uuid), [], why('no scratch file left'));
  return { run, ms };
}

/**
 * Polls the run (every 20 ms) until it reads its disks (its image write reported
 * progress: the NBD connections are open), or until it ends.
 */
async function whileWriting(s: Scenario, job: string, runId: string): Promise<ReplicationRun> {
  return s.host.waitRun(
    job,
    runId,
    (r) =>
      (r.stageDetails?.stage === 'Writing image' && !!r.stageDetails.stageProgress) ||
      !['PENDING', 'ACTIVE'].includes(r.state ?? ''),
    60_000,
    20,
  );
}

const UUID = {
  kill: '0b6f4f7e-1c3a-4d55-9e21-6a7c0f3b2d11',
  nbd: '1c7e5a8f-2d4b-4e66-8f32-7b8d1a4c3e22',
  quit: '2d8f6b9a-3e5c-4f77-9a43-8c9e2b5d4f33',
};

/**
 * Whether run `runId` held its point in time when the server died: its snapshot record
 * says ready (a restarted server reattaches to it), or the record is gone but the run's
 * bitmap exists (the run had released it as committed). Otherwise the resumed run takes
 * (or retakes) its snapshot, after whatever the guest wrote meanwhile.
 */
async function heldSnapshot(s: Scenario, g: Guest, runId: string): Promise<boolean> {
  const record = await readFile(join(s.host.dataDir, 'kvm', g.uuid, `${runId}.json`), 'utf8')
    .then((t) => JSON.parse(t) as { state?: string })
    .catch(() => undefined);
  if (record) return record.state === 'ready';
  return (await g.leftovers()).bitmaps.includes(`disk0:${checkpointOf(runId)}`);
}

test(`kill -9 of the server at random points of KVM runs: resumed or failed cleanly, nothing left, next run exact (seed ${SEED})`, async () => {
  await scenario('kill9', SEED, async (s) => {
    const g = await guest(s, 'k9', UUID.kill);
    const job = await s.host.createJob('k9');
    await completeRun(s, g, job, /full read/);
    // An uninterrupted incremental run of the size the killed ones have: its duration
    // (plus a server start) is the span the kill points are spread over.
    await churn(g, s.rand, 12 * MiB);
    const { run: base, ms: span } = await completeRun(s, g, job, /incremental/);
    let checkpoint = checkpointOf(base.replicationRunId!);
    const rounds = 5;
    let reattached = 0;
    for (let i = 0; i < rounds; i++) {
      await churn(g, s.rand, 12 * MiB);
      const runId = await s.host.startRun(job);
      // Stratified over the run (as test/store/crash.integ.test.ts spreads its kills),
      // squared so the short steps at its start (prepare, snapshot: tens of ms) get hit too.
      const at = Math.round(span * ((i + s.rand()) / rounds) ** 2);
      await sleep(at);
      const seen = await s.host.run(job, runId);
      await s.host.kill9();
      // The guest writes while Ferry is down: a snapshot already held must not show it
      // (one point in time across the restart); one taken after the restart must.
      const held = await heldSnapshot(s, g, runId);
      const before = sha256(g.model);
      await g.write(s.rand, Math.floor(s.rand() * 1024) * 65536, 256 * 1024);
      const want = held ? before : sha256(g.model);
      await s.host.start();
      const run = await s.host.waitRun(job, runId);
      process.stderr.write(
        `kill9 round ${i}: killed at ${at}/${Math.round(span)} ms in ${seen?.state}/${seen?.stageDetails?.stage}` +
          ` (snapshot ${held ? 'held' : 'not held'}): ${run.state} — ${run.statusMessage}\n`,
      );
      if (run.state === 'COMPLETED') {
        if (held && seen?.state === 'ACTIVE') reattached++;
        assert.equal(
          await s.host.imageSha(run.amiId!, s.dir),
          want,
          why(`round ${i}: image = the disk at the run's point in time`),
        );
        checkpoint = checkpointOf(runId);
      } else {
        assert.equal(run.state, 'FAILED', why(`round ${i}`));
        assert.match(run.statusMessage ?? '', CODED, why(`round ${i}: a coded failure`));
      }
      await g.assertClean(checkpoint, (m) => why(`round ${i}: ${m}`));
      assert.deepEqual(await s.host.scratchFiles(g.uuid), [], why(`round ${i}: no scratch file left`));
    }
    process.stderr.write(
      `kill9: ${reattached} of ${rounds} runs reattached to their snapshot (seed ${SEED})\n`,
    );

    // A run killed at every start gives up after MAX_ATTEMPTS (3): it fails cleanly, and
    // the snapshot the dead processes held is released uncommitted by the next one.
    await churn(g, s.rand, 24 * MiB);
    const runId = await s.host.startRun(job);
    let killedActive = 0;
    for (let k = 0; k < 3; k++) {
      const seen = await s.host.waitRun(job, runId, (r) => r.state !== 'PENDING', 60_000, 10);
      if (seen.state === 'ACTIVE') killedActive++;
      await s.host.kill9();
      await s.host.start();
    }
    const gaveUp = await s.host.waitRun(job, runId);
    process.stderr.write(`kill9: killed 3 times: ${gaveUp.state} — ${gaveUp.statusMessage}\n`);
    if (killedActive === 3) {
      assert.equal(gaveUp.state, 'FAILED', why(`a run interrupted 3 times fails: ${gaveUp.statusMessage}`));
      assert.match(gaveUp.statusMessage ?? '', /^FERRY_INTERNAL: .*interrupted 3 times/, why('coded'));
    } else if (gaveUp.state === 'COMPLETED') {
      checkpoint = checkpointOf(runId);
    }
    await g.assertClean(checkpoint, (m) => why(`after giving up: ${m}`));
    assert.deepEqual(await s.host.scratchFiles(g.uuid), [], why('after giving up: no scratch file left'));

    // Changes made since the last committed image, over however many failed runs, are all in the next.
    await churn(g, s.rand, 4 * MiB);
    await completeRun(s, g, job, /incremental/);
  });
});

/** Whether the checkpoint bitmap `name` on the VM's disk records writes (not disabled, not busy). */
async function recording(g: Guest, name: string): Promise<boolean | undefined> {
  const nodes = await qmp(g.vm.qmp, queryNamedBlockNodes);
  const b = nodes.find((n) => n['node-name'] === 'disk0')?.['dirty-bitmaps']?.find((x) => x.name === name);
  return b ? b.recording && !b.busy : undefined;
}

/**
 * Starts a run and, once it reads its disks, makes `fault` happen. A run that finished
 * before it could be caught is retried once with more to read (not a failure of Ferry).
 */
async function faultWhileWriting(
  s: Scenario,
  g: Guest,
  job: string,
  fault: () => Promise<void>,
): Promise<ReplicationRun> {
  for (let attempt = 0; ; attempt++) {
    const runId = await s.host.startRun(job);
    const seen = await whileWriting(s, job, runId);
    if (seen.state === 'ACTIVE') {
      await fault();
      return s.host.waitRun(job, runId);
    }
    assert.ok(attempt < 2, why(`run ${runId} was never caught reading: ${JSON.stringify(seen)}`));
    await churn(g, s.rand, 24 * MiB);
  }
}

test(`QEMU's NBD export goes away during a run: coded failure, nothing left, changes kept for the next incremental run (seed ${SEED})`, async () => {
  await scenario('nbd', SEED + 1, async (s) => {
    const g = await guest(s, 'nb', UUID.nbd);
    const job = await s.host.createJob('nb');
    const first = await completeRun(s, g, job, /full read/);
    const checkpoint = checkpointOf(first.run.replicationRunId!);
    const faults: [string, () => Promise<void>][] = [
      [
        'block-export-del hard',
        async () => {
          await qmp(g.vm.qmp, async (q) => {
            const ours = (await queryBlockExports(q)).filter((e) => e.id.startsWith('ferry-'));
            assert.equal(ours.length, 1, why(`one export of Ferry's: ${JSON.stringify(ours)}`));
            await q.execute('block-export-del', { id: ours[0]!.id, mode: 'hard' });
          });
        },
      ],
      ['nbd-server-stop', () => qmp(g.vm.qmp, (q) => q.execute('nbd-server-stop'))],
    ];
    for (const [how, fault] of faults) {
      // Enough changed data that the incremental run reads for a while.
      await churn(g, s.rand, 24 * MiB);
      const run = await faultWhileWriting(s, g, job, fault);
      process.stderr.write(`nbd: ${how}: ${run.state} — ${run.statusMessage}\n`);
      assert.equal(run.state, 'FAILED', why(`${how}: ${run.statusMessage}`));
      assert.match(run.statusMessage ?? '', /^FERRY_NBD_[A-Z_]+: /, why(`${how}: a coded NBD failure`));
      await g.assertClean(checkpoint, (m) => why(`${how}: ${m}`));
      assert.equal(await recording(g, checkpoint), true, why(`${how}: the checkpoint records again`));
      assert.deepEqual(await s.host.scratchFiles(g.uuid), [], why(`${how}: no scratch file left`));
    }
    // Everything written since the first image, across both failed runs, is read now, incrementally.
    await churn(g, s.rand, 2 * MiB);
    await completeRun(s, g, job, /incremental/);
  });
});

test(`the VM quits or QEMU is killed during a run: coded failure, scratch files removed, server healthy; after a restart the next run reads in full and is exact (seed ${SEED})`, async () => {
  await scenario('quit', SEED + 2, async (s) => {
    const g = await guest(s, 'qt', UUID.quit);
    const job = await s.host.createJob('qt');
    await completeRun(s, g, job, /full read/);
    const exited = () =>
      new Promise<void>((r) => (g.vm.proc.exitCode !== null ? r() : g.vm.proc.once('exit', () => r())));
    const faults: [string, () => Promise<void>, RegExp][] = [
      [
        'QMP quit',
        async () => {
          await qmp(g.vm.qmp, (q) => q.execute('quit').catch(() => undefined));
          await exited();
        },
        // QEMU saved its bitmaps, but the checkpoint was left disabled by the held snapshot.
        /rescan \(disk 0: .*not recording/,
      ],
      [
        'SIGKILL of QEMU',
        async () => {
          g.vm.proc.kill('SIGKILL');
          await exited();
        },
        // QEMU had no chance to save the checkpoint bitmap.
        /rescan \(disk 0: .*(no change-tracking bitmap|inconsistent)/,
      ],
    ];
    for (const [how, fault, rescan] of faults) {
      await churn(g, s.rand, 24 * MiB);
      const run = await faultWhileWriting(s, g, job, fault);
      process.stderr.write(`quit: ${how}: ${run.state} — ${run.statusMessage}\n`);
      assert.equal(run.state, 'FAILED', why(`${how}: ${run.statusMessage}`));
      assert.match(run.statusMessage ?? '', CODED, why(`${how}: a coded failure`));
      assert.deepEqual(await s.host.scratchFiles(g.uuid), [], why(`${how}: scratch files removed`));
      assert.deepEqual(
        (await readdir(join(s.host.dataDir, 'kvm'))).filter((f) => f !== g.uuid),
        [],
        why(`${how}: nothing else of the VM's in DATA_DIR/kvm`),
      );
      // The server is healthy: it answers, and its catalog still works.
      assert.equal(s.host.server.child.exitCode, null, why(`${how}: the server is running`));
      assert.equal((await fetch(`${s.host.server.url}/healthz`)).status, 200);
      await s.host.sms.importServerCatalog({});
      await g.restart();
      const { run: next } = await completeRun(s, g, job, /full read/);
      assert.match(next.statusMessage ?? '', rescan, why(`${how}: ${next.statusMessage}`));
    }
  });
});
