/**
 * End to end: a folder with a VM export (VMX + VMDK + raw disk) → ferry server → catalog →
 * CreateReplicationJob (frequency in minutes) → first run → a disk changes → second run →
 * two images. The second run stores only the changed blocks, and exporting each image
 * gives back each disk exactly as it was at its run.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SMS } from '@aws-sdk/client-sms';
import {
  ferry,
  oracleChecksum,
  pseudoRandom,
  qemuImg,
  qemuIo,
  sha256File,
  tempDir,
} from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { smsClient, waitForRun } from '../helpers/sms.js';

const BLOCK = 64 * 1024;
let server: RunningServer;
let sms: SMS;
let vmDir: string;

before(async () => {
  const images = await tempDir('ferry-e2e-');
  vmDir = join(images, 'app01');
  await mkdir(vmDir);
  const raw = join(images, 'boot.raw');
  await writeFile(
    raw,
    Buffer.concat([pseudoRandom(4 << 20, 11), Buffer.alloc(4 << 20), pseudoRandom(1 << 20, 12)]),
  );
  await qemuImg('convert', '-f', 'raw', '-O', 'vmdk', raw, join(vmDir, 'boot.vmdk'));
  await writeFile(join(vmDir, 'data.img'), pseudoRandom(2 << 20, 13));
  await writeFile(
    join(vmDir, 'app01.vmx'),
    'displayName = "app01"\nnumvcpus = "2"\nmemsize = "1024"\nscsi0:0.fileName = "boot.vmdk"\nscsi0:1.fileName = "data.img"\n',
  );
  server = await startServer({ imagesDir: images, args: ['--frequency-unit', 'minutes'] });
  sms = smsClient(server);
});

after(async () => {
  sms?.destroy();
  await server?.stop();
});

async function exportChecksum(amiId: string, disk: number, dir: string): Promise<string> {
  const out = join(dir, `${amiId}-${disk}.raw`);
  const r = await ferry([
    'images',
    'export',
    '--repo',
    join(server.dataDir, 'store'),
    '--key-file',
    join(server.dataDir, 'store.key'),
    amiId,
    out,
    '--disk',
    String(disk),
    '-O',
    'raw',
  ]);
  assert.equal(r.code, 0, r.stderr);
  return sha256File(out);
}

test('two runs, a changed disk between them: two images, the second stores only the changed blocks', async () => {
  const work = await tempDir();
  const servers = (await sms.getServers({})).serverList ?? [];
  assert.equal(servers.length, 1);
  assert.equal(servers[0]!.vmServer?.vmName, 'app01');
  const serverId = servers[0]!.serverId!;

  const before1 = [
    await oracleChecksum(join(vmDir, 'boot.vmdk'), 'vmdk', work),
    await sha256File(join(vmDir, 'data.img')),
  ];
  const seed = new Date();
  const { replicationJobId } = await sms.createReplicationJob({
    serverId,
    seedReplicationTime: seed,
    frequency: 1,
  });
  const run1 = await waitForRun(sms, replicationJobId!);
  assert.equal(run1.state, 'COMPLETED', run1.statusMessage);
  assert.equal(run1.type, 'AUTOMATIC');
  const job = (await sms.getReplicationJobs({ replicationJobId })).replicationJobList![0]!;
  assert.equal(job.latestAmiId, run1.amiId);
  // The SDK sends a Date as whole epoch seconds, rounded (not truncated).
  const nextInMs = job.nextReplicationRunStartTime!.getTime() - Math.round(seed.getTime() / 1000) * 1000;
  assert.equal(nextInMs, 60_000, 'frequency 1 in minutes mode');

  // Change one 64 KiB block of each disk.
  await qemuIo(join(vmDir, 'boot.vmdk'), 'vmdk', `write -P 0xab ${5 * BLOCK} ${BLOCK}`);
  const fh = await open(join(vmDir, 'data.img'), 'r+');
  await fh.write(pseudoRandom(BLOCK, 99), 0, BLOCK, 7 * BLOCK);
  await fh.close();
  const before2 = [
    await oracleChecksum(join(vmDir, 'boot.vmdk'), 'vmdk', work),
    await sha256File(join(vmDir, 'data.img')),
  ];
  assert.notDeepEqual(before2, before1);

  const { replicationRunId } = await sms.startOnDemandReplicationRun({
    replicationJobId,
    description: 'after the change',
  });
  const run2 = await waitForRun(sms, replicationJobId!, replicationRunId);
  assert.equal(run2.state, 'COMPLETED', run2.statusMessage);
  assert.notEqual(run2.amiId, run1.amiId);
  assert.match(
    run1.statusMessage ?? '',
    new RegExp(`; ${(4 << 20) + (1 << 20) + (2 << 20)} new bytes stored`),
    run1.statusMessage,
  );
  assert.match(
    run2.statusMessage ?? '',
    new RegExp(`; ${2 * BLOCK} new bytes stored`),
    'only the two changed blocks',
  );

  for (const [i, sum] of before1.entries())
    assert.equal(await exportChecksum(run1.amiId!, i, work), sum, `image 1 disk ${i}`);
  for (const [i, sum] of before2.entries())
    assert.equal(await exportChecksum(run2.amiId!, i, work), sum, `image 2 disk ${i}`);
});
