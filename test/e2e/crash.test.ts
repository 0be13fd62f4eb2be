/**
 * Crash safety: `kill -9` the server while a run is writing its image, start it again on
 * the same data directory, and the run resumes and completes — never stuck ACTIVE, and no
 * half image is ever listed. The exported image equals the source disk.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { ferry, pseudoRandom, sha256File, tempDir } from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { smsClient, waitForRun } from '../helpers/sms.js';

const DISK_BYTES = 192 << 20;
const servers: RunningServer[] = [];
after(async () => {
  for (const s of servers) await s.stop().catch(() => undefined);
});

async function images(dataDir: string, extra: string[] = []): Promise<unknown[]> {
  const r = await ferry([
    'images',
    'list',
    '--repo',
    join(dataDir, 'store'),
    '--key-file',
    join(dataDir, 'store.key'),
    '--json',
    ...extra,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as unknown[];
}

test('kill -9 during a run, restart: the run resumes from its checkpoint and completes', async () => {
  const root = await tempDir('ferry-crash-');
  const imagesDir = join(root, 'images');
  await mkdir(join(imagesDir, 'big01'), { recursive: true });
  const disk = join(imagesDir, 'big01', 'disk.img');
  const fh = await open(disk, 'w');
  for (let off = 0; off < DISK_BYTES; off += 16 << 20)
    await fh.write(pseudoRandom(16 << 20, 1 + off / (16 << 20)), 0, 16 << 20, off);
  await fh.close();
  const dataDir = join(root, 'data');

  const first = await startServer({ imagesDir, dataDir });
  servers.push(first);
  const sms1 = smsClient(first);
  const serverId = (await sms1.getServers({})).serverList![0]!.serverId!;
  const { replicationJobId } = await sms1.createReplicationJob({
    serverId,
    seedReplicationTime: new Date(),
    frequency: 24,
  });
  const writing = await waitForRun(
    sms1,
    replicationJobId!,
    undefined,
    60_000,
    (r) => r.stageDetails?.stage === 'Writing image' || (r.state !== 'PENDING' && r.state !== 'ACTIVE'),
  );
  assert.equal(
    writing.state,
    'ACTIVE',
    `the run must still be writing when killed: ${JSON.stringify(writing)}`,
  );
  await new Promise((r) => setTimeout(r, 300));
  sms1.destroy();
  await first.stop('SIGKILL');

  assert.deepEqual(await images(dataDir), [], 'no half image is listed');
  const incomplete = (await images(dataDir, ['--incomplete'])) as { id: string }[];
  assert.equal(incomplete.length, 1, 'the kill interrupted the image write');

  const second = await startServer({ imagesDir, dataDir });
  servers.push(second);
  const sms2 = smsClient(second);
  const run = await waitForRun(sms2, replicationJobId!, writing.replicationRunId, 120_000);
  assert.equal(run.state, 'COMPLETED', run.statusMessage);
  const listed = (await images(dataDir)) as { id: string }[];
  assert.deepEqual(
    listed.map((i) => i.id),
    [run.amiId],
    'exactly the one completed image',
  );
  assert.equal(run.amiId, incomplete[0]!.id, 'the interrupted write was resumed, not restarted');
  const out = join(root, 'export.raw');
  const exp = await ferry([
    'images',
    'export',
    '--repo',
    join(dataDir, 'store'),
    '--key-file',
    join(dataDir, 'store.key'),
    run.amiId!,
    out,
    '--disk',
    '0',
    '-O',
    'raw',
  ]);
  assert.equal(exp.code, 0, exp.stderr);
  assert.equal(await sha256File(out), await sha256File(disk));
  sms2.destroy();
});
