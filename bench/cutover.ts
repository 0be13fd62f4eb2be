/**
 * Cutover benchmark (issue: launch): the time from StartCutover to the cutover instance
 * running (final replication run + launch, guest boot excluded), for a 2 GiB server with
 * 1 % of its 64 KiB blocks changed since the last run. Target: ≤ 60 s. The reference is a
 * copy-based cutover's floor: `qemu-img convert` of the whole disk to a new qcow2 (what a
 * tool that re-copies the disk at cutover spends before it can even boot), same run.
 *
 * The source is a disk-image folder (no change tracking: the final run re-reads the disk
 * and writes only changed blocks; a KVM source reads only the dirty ones, bench/kvm-replication.ts).
 *
 *   npm run build && node dist/bench/cutover.js [--dir /tmp/ferry-bench-cutover]
 */
import { execFileSync } from 'node:child_process';
import { open, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createFolderConnector } from '../src/connectors/index.js';
import { ControlPlane } from '../src/control/index.js';
import { openDatabase } from '../src/db/index.js';
import { LocalBackend, RawMasterKey, Repository } from '../src/store/index.js';
import { ensureMixedDisk } from './mixed-disk.js';

const { values } = parseArgs({ options: { dir: { type: 'string', default: '/tmp/ferry-bench-cutover' } } });
const DIR = values.dir as string;
const SIZE = 2 * 1024 ** 3;
const TARGET_S = 60;

async function rewrite(path: string, blocks: number, seed: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    let x = seed;
    const buf = Buffer.alloc(65536);
    for (let i = 0; i < blocks; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      buf.fill(x & 0xff);
      buf.writeUInt32LE(x, 0);
      await fh.write(buf, 0, buf.length, (x % (SIZE / 65536)) * 65536);
    }
  } finally {
    await fh.close();
  }
}

async function main(): Promise<void> {
  await rm(DIR, { recursive: true, force: true });
  await mkdir(join(DIR, 'src', 'app01'), { recursive: true });
  const disk = join(DIR, 'src', 'app01', 'disk0.raw');
  await ensureMixedDisk(disk, SIZE);
  const { db } = await openDatabase(join(DIR, 'ferry.db'));
  const store = await Repository.init(new LocalBackend(join(DIR, 'repo')), RawMasterKey.generate().master);
  const control = new ControlPlane({
    db,
    masterKey: Buffer.alloc(32, 1),
    store,
    instancesDir: join(DIR, 'instances'),
    jobPolicy: { frequencyUnit: 'minutes' },
    lifecycle: { pollMs: 100 },
  });
  await control.connectors.attach(
    await createFolderConnector({ connectorId: 'c-bench', imagesDir: join(DIR, 'src'), version: 'bench' }),
  );
  control.startWorkers({ soleWorker: true });
  try {
    await control.catalog.importServerCatalog();
    const serverId = (await control.catalog.getServers({})).serverList[0]!.serverId;
    const { replicationJobId } = await control.jobs.createReplicationJob({
      serverId,
      seedReplicationTime: Date.now() - 1000,
      frequency: 600,
    });
    const t0 = performance.now();
    for (;;) {
      await control.runDueWork();
      const job = (await control.jobs.getReplicationJobs({ replicationJobId })).replicationJobList[0]!;
      if (job.latestAmiId) break;
      if (job.state === 'FAILED') throw new Error(job.statusMessage);
      await new Promise((r) => setTimeout(r, 100));
    }
    const firstRun = (performance.now() - t0) / 1000;
    const app = await control.apps.createApp({
      name: 'bench',
      serverGroups: [{ serverList: [{ serverId }] }],
    });
    const appId = app.appSummary.appId;
    await control.appLaunch.putAppLaunchConfiguration({
      appId,
      serverGroupLaunchConfigurations: [
        {
          serverGroupId: app.serverGroups[0]!.serverGroupId,
          launchOrder: 1,
          serverLaunchConfigurations: [{ server: { serverId }, instanceType: 't3.nano' }],
        },
      ],
    });
    const settle = async () => {
      while ((await control.lifecycle.getAppLifecycle({ appId })).actionInProgress) {
        await control.runDueWork();
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await control.lifecycle.startTest({ appId });
    await settle();
    await control.lifecycle.markReadyForCutover({ appId });
    await rewrite(disk, Math.round((SIZE / 65536) * 0.01), 7);

    await control.lifecycle.startCutover({ appId });
    await settle();
    const l = await control.lifecycle.getAppLifecycle({ appId });
    if (l.state !== 'CUTOVER_COMPLETE') throw new Error(`${l.state}: ${l.statusMessage}`);
    const c = l.cutover!;

    const out = join(DIR, 'copy.qcow2');
    const t1 = performance.now();
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', disk, out]);
    const copy = (performance.now() - t1) / 1000;
    await rm(out);

    const total = (c.totalMs ?? 0) / 1000;
    console.log(
      `2 GiB server, 1 % of 64 KiB blocks changed after the last run (first run ${firstRun.toFixed(1)} s)`,
    );
    console.log(`  final replication run   ${((c.finalReplicationMs ?? 0) / 1000).toFixed(1)} s`);
    console.log(`  cutover launch          ${((c.launchMs ?? 0) / 1000).toFixed(1)} s`);
    console.log(
      `  cutover total           ${total.toFixed(1)} s   target ≤ ${TARGET_S} s: ${total <= TARGET_S ? 'met' : 'NOT met'}`,
    );
    console.log(
      `  qemu-img convert (copy) ${copy.toFixed(1)} s   ratio cutover/copy ${(total / copy).toFixed(2)}×`,
    );
    await control.launches!.terminateApp(appId);
  } finally {
    await control.lifecycle.stop();
    await control.launches?.stop();
    await control.stopWorkers();
    await db.close();
  }
}

await main();
