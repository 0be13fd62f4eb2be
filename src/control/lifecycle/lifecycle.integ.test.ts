/**
 * The application lifecycle on a real control plane (SQLite and PostgreSQL) with real
 * replication runs from a folder source into a store, and real QEMU instances on this
 * machine (the disks are not bootable: a launch is done when QEMU runs). Walks test →
 * revert → test → ready → cutover (whose final run carries a change made to the source
 * after the test) → revert cutover → cutover without final run → finalize → archive, and
 * the refusals and waves around it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DIALECTS, openTestDatabase } from '../../../test/helpers/databases.js';
import { makeImagesDir } from '../../../test/helpers/fixtures.js';
import { rejectsWith } from '../../../test/helpers/errors.js';
import { pseudoRandom, tempDir } from '../../../test/helpers/qemu.js';
import { createFolderConnector } from '../../connectors/index.js';
import { repositories } from '../../db/index.js';
import { listImages, MemoryBackend, RawMasterKey, Repository } from '../../store/index.js';
import { ControlPlane } from '../control-plane.js';

async function setup(dialect: (typeof DIALECTS)[number]) {
  const t = await openTestDatabase(dialect);
  const store = await Repository.init(new MemoryBackend(), RawMasterKey.generate().master);
  const control = new ControlPlane({
    db: t.db,
    masterKey: Buffer.alloc(32, 7),
    store,
    instancesDir: await tempDir('ferry-lifecycle-instances-'),
    jobPolicy: { frequencyUnit: 'minutes' },
    lifecycle: { pollMs: 50, finalReplicationTimeoutMs: 120_000 },
  });
  const images = await makeImagesDir(3, 1 << 20);
  await control.connectors.attach(
    await createFolderConnector({ connectorId: 'c-test', imagesDir: images, version: 't' }),
  );
  await control.catalog.importServerCatalog();
  const servers = (await control.catalog.getServers({})).serverList;
  const byName = new Map(servers.map((s) => [s.vmServer!.vmName!, s.serverId]));
  control.startWorkers({ soleWorker: true });
  return {
    control,
    images,
    byName,
    /** Lets the background action of the app end, running the runs it starts. */
    async settle(appId: string) {
      for (let i = 0; i < 600; i++) {
        await control.runDueWork();
        if (!(await control.lifecycle.getAppLifecycle({ appId })).actionInProgress) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.fail(`app ${appId} still busy`);
    },
    async close() {
      await control.lifecycle.stop();
      await control.launches?.stop();
      await control.stopWorkers();
      await t.close();
    },
  };
}

async function replicate(s: Awaited<ReturnType<typeof setup>>, serverId: string): Promise<string> {
  const { replicationJobId } = await s.control.jobs.createReplicationJob({
    serverId,
    seedReplicationTime: Date.now() - 1000,
    frequency: 600,
  });
  for (let i = 0; i < 600; i++) {
    await s.control.runDueWork();
    const job = (await s.control.jobs.getReplicationJobs({ replicationJobId })).replicationJobList[0]!;
    if (job.latestAmiId) return job.latestAmiId;
    await new Promise((r) => setTimeout(r, 50));
  }
  return assert.fail(`job ${replicationJobId} made no image`);
}

async function makeApp(s: Awaited<ReturnType<typeof setup>>, name: string, serverIds: string[]) {
  const app = await s.control.apps.createApp({
    name,
    serverGroups: serverIds.map((serverId, i) => ({ name: `g${i}`, serverList: [{ serverId }] })),
  });
  const appId = app.appSummary.appId;
  await s.control.appLaunch.putAppLaunchConfiguration({
    appId,
    serverGroupLaunchConfigurations: app.serverGroups.map((g, i) => ({
      serverGroupId: g.serverGroupId,
      launchOrder: i + 1,
      serverLaunchConfigurations: [{ server: { serverId: serverIds[i]! }, instanceType: 't3.nano' }],
    })),
  });
  return appId;
}

for (const dialect of DIALECTS) {
  describe(`application lifecycle (${dialect})`, () => {
    test('test → revert → test → ready → cutover with a final run → revert → cutover → finalize → archive', async () => {
      const s = await setup(dialect);
      try {
        const [a, b] = [s.byName.get('vm01')!, s.byName.get('vm02')!];
        const appId = await makeApp(s, 'shop', [a, b]);
        const l = () => s.control.lifecycle.getAppLifecycle({ appId });

        let now = await l();
        assert.equal(now.state, 'NOT_READY');
        assert.match(now.statusMessage, new RegExp(`${a}.*${b}`), 'names the servers without an image');
        await rejectsWith(s.control.lifecycle.startTest({ appId }), 'FERRY_LIFECYCLE_TRANSITION');

        const first = new Map([
          [a, await replicate(s, a)],
          [b, await replicate(s, b)],
        ]);
        assert.equal((await l()).state, 'READY_FOR_TESTING');
        await rejectsWith(s.control.lifecycle.startCutover({ appId }), 'FERRY_LIFECYCLE_TRANSITION');

        // Test, revert, test again.
        assert.deepEqual(await s.control.lifecycle.startTest({ appId }), { state: 'TEST_IN_PROGRESS' });
        await rejectsWith(s.control.lifecycle.startTest({ appId }), 'FERRY_OPERATION_NOT_PERMITTED');
        await s.settle(appId);
        now = await l();
        assert.equal(now.state, 'TEST_IN_PROGRESS', now.statusMessage);
        assert.equal(now.launchPurpose, 'test');
        assert.ok(
          now.servers.every(
            (x) => x.instanceState === 'running' && x.latestImageId === first.get(x.serverId),
          ),
        );
        await s.control.lifecycle.revertToReadyForTesting({ appId });
        now = await l();
        assert.equal(now.state, 'READY_FOR_TESTING');
        assert.ok(
          now.servers.every((x) => x.instanceId === undefined),
          'test instances terminated',
        );
        await s.control.lifecycle.startTest({ appId });
        await s.settle(appId);
        await s.control.lifecycle.markReadyForCutover({ appId });
        assert.equal((await l()).state, 'READY_FOR_CUTOVER');

        // The source changes after the test; the cutover's final run must carry it.
        await writeFile(join(s.images, 'vm01', 'disk0.img'), pseudoRandom(1 << 20, 99));
        assert.deepEqual(await s.control.lifecycle.startCutover({ appId }), { state: 'CUTOVER_IN_PROGRESS' });
        await s.settle(appId);
        now = await l();
        assert.equal(now.state, 'CUTOVER_COMPLETE', now.statusMessage);
        assert.equal(now.launchPurpose, 'cutover');
        assert.ok(now.cutover?.finalReplicationMs !== undefined && now.cutover.totalMs !== undefined);
        const instances = await repositories(s.control.db).instances.forApp(appId);
        const live = instances.filter((i) => i.state === 'running');
        assert.equal(live.length, 2);
        for (const i of live) {
          assert.notEqual(
            i.imageId,
            first.get(i.serverId),
            'launched from the final run, not the tested image',
          );
          assert.equal(i.imageId, now.servers.find((x) => x.serverId === i.serverId)?.latestImageId);
        }
        assert.deepEqual(
          now.history.map((h) => h.state),
          [
            'TEST_IN_PROGRESS',
            'READY_FOR_TESTING',
            'TEST_IN_PROGRESS',
            'READY_FOR_CUTOVER',
            'CUTOVER_IN_PROGRESS',
            'CUTOVER_COMPLETE',
          ],
          'progress messages update their state, not the history',
        );

        await rejectsWith(s.control.lifecycle.archiveApp({ appId }), 'FERRY_LIFECYCLE_TRANSITION');
        await s.control.lifecycle.revertCutover({ appId });
        assert.equal((await l()).state, 'READY_FOR_CUTOVER');
        await s.control.lifecycle.startCutover({ appId, finalReplication: false });
        await s.settle(appId);
        now = await l();
        assert.equal(now.state, 'CUTOVER_COMPLETE', now.statusMessage);
        assert.equal(now.cutover?.finalReplicationMs, undefined);

        for (let i = 0; i < 600 && !(await l()).streaming?.done; i++)
          await new Promise((r) => setTimeout(r, 50));
        now = await l();
        assert.equal(now.streaming?.done, true, 'the cutover instances took in their image');
        assert.ok(now.servers.every((x) => x.standalone === true));
        await s.control.lifecycle.finalizeCutover({ appId });
        now = await l();
        assert.equal(now.state, 'FINALIZED');
        for (const id of [a, b]) {
          const jobs = await repositories(s.control.db).jobs.forServer(id, [
            'PENDING',
            'ACTIVE',
            'COMPLETED',
          ]);
          assert.equal(jobs.length, 0, 'replication stopped');
        }
        await s.control.lifecycle.archiveApp({ appId });
        assert.equal((await l()).state, 'ARCHIVED');
        await s.control.launches!.terminateApp(appId);
      } finally {
        await s.close();
      }
    });

    test('a cutover whose final run fails goes back to READY_FOR_CUTOVER and says why; waves', async () => {
      const s = await setup(dialect);
      try {
        const c = s.byName.get('vm03')!;
        const appId = await makeApp(s, 'lonely', [c]);
        await replicate(s, c);
        await s.control.lifecycle.startTest({ appId });
        await s.settle(appId);
        await s.control.lifecycle.markReadyForCutover({ appId });
        // The source disk disappears: the final run fails, nothing is launched.
        await rm(join(s.images, 'vm03', 'disk0.img'));
        await s.control.lifecycle.startCutover({ appId });
        await s.settle(appId);
        const now = await s.control.lifecycle.getAppLifecycle({ appId });
        assert.equal(now.state, 'READY_FOR_CUTOVER');
        assert.match(now.statusMessage, /^Cutover failed: the final replication run/);
        assert.ok(
          now.servers.every((x) => x.instanceId === undefined),
          'no cutover instance left',
        );

        // Waves: one action over several apps, each outcome reported.
        const other = await makeApp(s, 'empty', [s.byName.get('vm01')!]);
        await s.control.waves.assignWave({ waveName: 'wave 1', appIds: [appId, other] });
        const { waves } = await s.control.waves.listWaves();
        assert.deepEqual(
          waves.map((w) => [w.waveName, w.apps.map((x) => [x.appId, x.state])]),
          [
            [
              'wave 1',
              [
                [appId, 'READY_FOR_CUTOVER'],
                [other, 'NOT_READY'],
              ],
            ],
          ],
        );
        const out = await s.control.lifecycleAction({ waveName: 'wave 1' }, (id) =>
          s.control.lifecycle.archiveApp({ appId: id }),
        );
        assert.deepEqual(
          out.apps?.map((x) => [x.appId, x.state ?? x.errorCode]),
          [
            [appId, 'FERRY_LIFECYCLE_TRANSITION'],
            [other, 'ARCHIVED'],
          ],
        );
        await rejectsWith(
          s.control.lifecycleAction({}, async () => ({ state: 'x' })),
          'FERRY_INVALID_ARGUMENT',
        );
        await rejectsWith(
          s.control.waves.assignWave({ waveName: '../x', appIds: [appId] }),
          'FERRY_INVALID_ARGUMENT',
        );
        await s.control.waves.assignWave({ waveName: '', appIds: [appId, other] });
        assert.deepEqual((await s.control.waves.listWaves()).waves, []);
      } finally {
        await s.close();
      }
    });

    test('a pinned image is what LaunchApp boots, and retention keeps it', async () => {
      const s = await setup(dialect);
      try {
        const a = s.byName.get('vm01')!;
        const appId = await makeApp(s, 'pinned', [a]);
        const { replicationJobId } = await s.control.jobs.createReplicationJob({
          serverId: a,
          seedReplicationTime: Date.now() - 1000,
          frequency: 600,
          numberOfRecentAmisToKeep: 1,
        });
        const latest = async (not?: string) => {
          for (let i = 0; i < 600; i++) {
            await s.control.runDueWork();
            const job = (await s.control.jobs.getReplicationJobs({ replicationJobId }))
              .replicationJobList[0]!;
            if (job.latestAmiId && job.latestAmiId !== not) return job.latestAmiId;
            await new Promise((r) => setTimeout(r, 50));
          }
          return assert.fail('no new image');
        };
        const first = await latest();
        await rejectsWith(
          s.control.launchOptions.putServerLaunchOptions({
            appId,
            serverId: a,
            imageId: 'ami-00000000000000000',
          }),
          'FERRY_INVALID_ARGUMENT',
        );
        await s.control.launchOptions.putServerLaunchOptions({ appId, serverId: a, imageId: first });
        await writeFile(join(s.images, 'vm01', 'disk0.img'), pseudoRandom(1 << 20, 77));
        await s.control.jobs.startOnDemandReplicationRun({ replicationJobId });
        const second = await latest(first);
        const kept = (await listImages(s.control.store!, { job: replicationJobId })).map((i) => i.id).sort();
        assert.deepEqual(kept, [first, second].sort(), 'keep 1, plus the pinned one');

        await s.control.launches!.launchApp(appId);
        await s.control.launches!.settled(appId);
        const [instance] = (await s.control.instances.list({ appId })).instances;
        assert.equal(instance?.imageId, first, 'the pinned image, not the latest');
        await s.control.launches!.terminateApp(appId);
      } finally {
        await s.close();
      }
    });
  });
}
