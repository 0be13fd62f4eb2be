import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DIALECTS, openTestDatabase } from '../../../test/helpers/databases.js';
import { makeImagesDir } from '../../../test/helpers/fixtures.js';
import { createFolderConnector } from '../../connectors/index.js';
import { repositories } from '../../db/index.js';
import { listImages, MemoryBackend, RawMasterKey, Repository } from '../../store/index.js';
import { ManualClock } from '../clock.js';
import { ControlPlane } from '../control-plane.js';
import { FAILURES_BEFORE_PAUSE } from './outcome.js';

async function setup(dialect: (typeof DIALECTS)[number]) {
  const t = await openTestDatabase(dialect);
  const clock = new ManualClock(Date.now());
  const store = await Repository.init(new MemoryBackend(), RawMasterKey.generate().master);
  const control = new ControlPlane({
    db: t.db,
    masterKey: Buffer.alloc(32, 7),
    clock,
    store,
    jobPolicy: { frequencyUnit: 'minutes' },
  });
  const images = await makeImagesDir(2, 192 * 1024);
  const connector = await createFolderConnector({ connectorId: 'c-test', imagesDir: images, version: 't' });
  await control.connectors.attach(connector);
  await control.catalog.importServerCatalog();
  const servers = (await control.catalog.getServers({})).serverList;
  control.startWorkers({ soleWorker: true });
  return {
    control,
    clock,
    store,
    images,
    serverIds: servers.map((s) => s.serverId),
    /** Moves time on; the connector heartbeats as the server's timer would. */
    advance: async (ms: number) => {
      clock.advance(ms);
      await control.connectors.heartbeat('c-test');
    },
    runs: async (jobId: string) =>
      (await control.jobs.getReplicationRuns({ replicationJobId: jobId })).replicationRunList,
    job: async (jobId: string) =>
      (await control.jobs.getReplicationJobs({ replicationJobId: jobId })).replicationJobList[0]!,
    close: async () => {
      await control.stopWorkers();
      await t.close();
    },
  };
}

for (const dialect of DIALECTS) {
  describe(`scheduler and runs (${dialect})`, () => {
    test('a job seeded in the past runs at once; the schedule advances; runs record their image', async () => {
      const s = await setup(dialect);
      try {
        const seed = s.clock.now() - 1000;
        const { replicationJobId } = await s.control.jobs.createReplicationJob({
          serverId: s.serverIds[0]!,
          seedReplicationTime: seed,
          frequency: 5,
        });
        await s.control.runDueWork();
        let runs = await s.runs(replicationJobId);
        assert.equal(runs.length, 1);
        assert.equal(runs[0]!.state, 'COMPLETED', runs[0]!.statusMessage);
        assert.equal(runs[0]!.type, 'AUTOMATIC');
        assert.match(runs[0]!.amiId ?? '', /^ami-[0-9a-f]{17}$/);
        let job = await s.job(replicationJobId);
        assert.equal(job.state, 'ACTIVE');
        assert.equal(job.latestAmiId, runs[0]!.amiId);
        assert.equal(job.nextReplicationRunStartTime, seed + 5 * 60_000);
        const images = await listImages(s.store, { job: replicationJobId });
        assert.deepEqual(
          images.map((i) => i.id),
          [runs[0]!.amiId],
        );
        assert.equal(images[0]!.sourceServer, s.serverIds[0]);

        // Nothing is due before the next time; then the second run comes.
        await s.control.runDueWork();
        assert.equal((await s.runs(replicationJobId)).length, 1);
        await s.advance(5 * 60_000);
        await s.control.runDueWork();
        runs = await s.runs(replicationJobId);
        assert.equal(runs.length, 2);
        assert.equal(runs[1]!.state, 'COMPLETED');
        assert.match(runs[1]!.statusMessage, /; 0 new bytes stored/, 'an unchanged disk stores nothing new');
        job = await s.job(replicationJobId);
        assert.equal(job.latestAmiId, runs[1]!.amiId);
      } finally {
        await s.close();
      }
    });

    test('a runOnce job completes; numberOfRecentAmisToKeep trims old images', async () => {
      const s = await setup(dialect);
      try {
        const once = await s.control.jobs.createReplicationJob({
          serverId: s.serverIds[0]!,
          seedReplicationTime: s.clock.now(),
          runOnce: true,
        });
        await s.control.runDueWork();
        assert.equal((await s.job(once.replicationJobId)).state, 'COMPLETED');
        assert.equal((await s.job(once.replicationJobId)).nextReplicationRunStartTime, undefined);

        const kept = await s.control.jobs.createReplicationJob({
          serverId: s.serverIds[1]!,
          seedReplicationTime: s.clock.now(),
          frequency: 1,
          numberOfRecentAmisToKeep: 2,
        });
        for (let i = 0; i < 3; i++) {
          await s.control.runDueWork();
          await s.advance(60_000);
        }
        const completed = (await s.runs(kept.replicationJobId)).filter((r) => r.state === 'COMPLETED');
        assert.equal(completed.length, 3);
        const left = (await listImages(s.store, { job: kept.replicationJobId })).map((i) => i.id).sort();
        assert.deepEqual(
          left,
          completed
            .slice(1)
            .map((r) => r.amiId)
            .sort(),
        );
      } finally {
        await s.close();
      }
    });

    test('failures: FAILING, then PAUSED_ON_FAILURE with an actionable message; an on-demand run resumes the job', async () => {
      const s = await setup(dialect);
      try {
        // Corrupt the source first (a running worker may start the seed run at once): the disk
        // becomes a qcow2 header with nonsense.
        const disk = join(s.images, 'vm01', 'disk0.img');
        const bad = Buffer.alloc(192 * 1024);
        bad.write('QFI\xfb', 0, 'latin1');
        bad.writeUInt32BE(3, 4);
        await writeFile(disk, bad);
        const { replicationJobId } = await s.control.jobs.createReplicationJob({
          serverId: s.serverIds[0]!,
          seedReplicationTime: s.clock.now(),
          frequency: 1,
        });
        for (let i = 1; i <= FAILURES_BEFORE_PAUSE; i++) {
          await s.control.runDueWork();
          const job = await s.job(replicationJobId);
          assert.equal(
            job.state,
            i < FAILURES_BEFORE_PAUSE ? 'FAILING' : 'PAUSED_ON_FAILURE',
            job.statusMessage,
          );
          await s.advance(60_000);
        }
        const runs = await s.runs(replicationJobId);
        assert.ok(runs.every((r) => r.state === 'FAILED'));
        assert.match(runs[0]!.statusMessage, /^FERRY_[A-Z_]+: .+\. .+/);
        assert.match((await s.job(replicationJobId)).statusMessage, /start an on-demand run/);
        // Paused: the schedule makes no more runs.
        await s.control.runDueWork();
        assert.equal((await s.runs(replicationJobId)).length, FAILURES_BEFORE_PAUSE);
        // Fixed source + on-demand run: the job is ACTIVE again.
        await writeFile(disk, Buffer.alloc(192 * 1024, 1));
        await s.control.jobs.startOnDemandReplicationRun({ replicationJobId });
        await s.control.runDueWork();
        const job = await s.job(replicationJobId);
        assert.equal(job.state, 'ACTIVE', job.statusMessage);
      } finally {
        await s.close();
      }
    });

    test('a run interrupted by a crash resumes from its checkpoint; after too many attempts it fails cleanly', async () => {
      const s = await setup(dialect);
      try {
        const { replicationJobId } = await s.control.jobs.createReplicationJob({
          serverId: s.serverIds[0]!,
          seedReplicationTime: s.clock.now() + 3600_000,
          frequency: 5,
        });
        // Workers stopped while the test plays the dead worker.
        await s.control.stopWorkers();
        const { replicationRunId } = await s.control.jobs.startOnDemandReplicationRun({ replicationJobId });
        const r = repositories(s.control.db);
        // A worker that died after `prepare`: ACTIVE, leased by someone else, one step done.
        const disks = [{ index: 0, name: 'disk0.img', virtualSize: 192 * 1024 }];
        await r.runs.update(replicationRunId, {
          state: 'ACTIVE',
          leaseOwner: 'w-dead',
          leaseUntil: s.clock.now() + 30_000,
          attempts: 1,
          step: 'snapshot',
          checkpoint: { done: ['prepare'], disks },
        });
        s.control.startWorkers({ soleWorker: true });
        await s.control.runDueWork();
        const run = (await s.runs(replicationJobId))[0]!;
        assert.equal(run.state, 'COMPLETED', run.statusMessage);
        assert.equal((await r.runs.get(replicationRunId))?.attempts, 2);

        await s.control.stopWorkers();
        const again = await s.control.jobs.startOnDemandReplicationRun({ replicationJobId });
        await r.runs.update(again.replicationRunId, { state: 'ACTIVE', leaseOwner: 'w-dead', attempts: 3 });
        s.control.startWorkers({ soleWorker: true });
        await s.control.runDueWork();
        const failed = (await s.runs(replicationJobId)).find(
          (x) => x.replicationRunId === again.replicationRunId,
        )!;
        assert.equal(failed.state, 'FAILED');
        assert.match(failed.statusMessage, /interrupted 3 times/);
      } finally {
        await s.close();
      }
    });

    test('a busy job gets a MISSED run at its scheduled time; deleting a job deletes its pending runs', async () => {
      const s = await setup(dialect);
      try {
        // Workers stay stopped until the busy run is in place: a running worker would otherwise
        // start the seed run itself, racing the on-demand request below.
        await s.control.stopWorkers();
        const { replicationJobId } = await s.control.jobs.createReplicationJob({
          serverId: s.serverIds[0]!,
          seedReplicationTime: s.clock.now(),
          frequency: 1,
        });
        const r = repositories(s.control.db);
        const { replicationRunId } = await s.control.jobs.startOnDemandReplicationRun({ replicationJobId });
        await r.runs.update(replicationRunId, {
          state: 'ACTIVE',
          leaseOwner: 'w-other-live',
          leaseUntil: s.clock.now() + 3600_000,
        });
        const scheduler = s.control;
        scheduler.startWorkers({ soleWorker: false });
        await s.control.runDueWork();
        const runs = await s.runs(replicationJobId);
        assert.deepEqual(runs.map((x) => x.state).sort(), ['ACTIVE', 'MISSED']);
        await s.control.jobs.deleteReplicationJob({ replicationJobId });
        assert.equal((await r.jobs.get(replicationJobId))?.state, 'DELETING', 'waits for the active run');
      } finally {
        await s.close();
      }
    });
  });
}
