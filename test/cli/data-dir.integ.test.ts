/**
 * The scriptable contract: `ferry images export IMAGE_ID --data-dir DIR --disk N -O raw OUT`
 * writes disk N (0-based, in the server's disk order) of a completed run's image as a raw
 * file whose SHA-256 is the source disk's — while the server that wrote it still runs.
 * `images list --data-dir DIR --json` lists the run's image; the store commands open the
 * same repository with DIR/store.key; FERRY_DATA_DIR is the default; --repo and
 * --data-dir exclude each other.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SMS } from '@aws-sdk/client-sms';
import {
  assertCleanFailure,
  ferry,
  oracleChecksum,
  pseudoRandom,
  qemuImg,
  sha256File,
  tempDir,
} from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { smsClient, waitForRun } from '../helpers/sms.js';

let server: RunningServer;
let sms: SMS;
let vmDir: string;
let work: string;
let amiId: string;

before(async () => {
  const images = await tempDir('ferry-datadir-');
  work = await tempDir('ferry-datadir-out-');
  vmDir = join(images, 'web01');
  await mkdir(vmDir);
  // Disk 0 (VMX order) is a VMDK, disk 1 a raw file: the file-name order is the reverse.
  const raw = join(work, 'boot.raw');
  await writeFile(
    raw,
    Buffer.concat([pseudoRandom(3 << 20, 21), Buffer.alloc(2 << 20), pseudoRandom(1 << 20, 22)]),
  );
  await qemuImg('convert', '-f', 'raw', '-O', 'vmdk', raw, join(vmDir, 'z-boot.vmdk'));
  await writeFile(join(vmDir, 'a-data.img'), pseudoRandom(2 << 20, 23));
  await writeFile(
    join(vmDir, 'web01.vmx'),
    'displayName = "web01"\nscsi0:0.fileName = "z-boot.vmdk"\nscsi0:1.fileName = "a-data.img"\n',
  );
  server = await startServer({ imagesDir: images });
  sms = smsClient(server);
  const serverId = (await sms.getServers({})).serverList![0]!.serverId!;
  const { replicationJobId } = await sms.createReplicationJob({
    serverId,
    seedReplicationTime: new Date(),
    frequency: 12,
  });
  const run = await waitForRun(sms, replicationJobId!);
  assert.equal(run.state, 'COMPLETED', run.statusMessage);
  amiId = run.amiId!;
});

after(async () => {
  sms?.destroy();
  await server?.stop();
});

test('images export --data-dir: disk N of the run image has the source disk SHA-256, while the server runs', async () => {
  const sources = [
    await oracleChecksum(join(vmDir, 'z-boot.vmdk'), 'vmdk', work),
    await sha256File(join(vmDir, 'a-data.img')),
  ];
  for (const [disk, sum] of sources.entries()) {
    const out = join(work, `disk${disk}.raw`);
    // Exactly the form external checks use.
    const r = await ferry([
      'images',
      'export',
      amiId,
      '--data-dir',
      server.dataDir,
      '--disk',
      String(disk),
      '-O',
      'raw',
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(out), sum, `disk ${disk}`);
  }
  assert.equal(server.child.exitCode, null, 'the server kept running');
  const none = await ferry([
    'images',
    'export',
    amiId,
    '--data-dir',
    server.dataDir,
    '--disk',
    '2',
    '-O',
    'raw',
    join(work, 'x.raw'),
  ]);
  assertCleanFailure(none, 'FERRY_INVALID_ARGUMENT');
});

test('images list --data-dir --json lists the run image; store check and FERRY_DATA_DIR open the same store', async () => {
  const r = await ferry(['images', 'list', '--data-dir', server.dataDir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const images = JSON.parse(r.stdout) as { id: string; disks: { index: number }[] }[];
  assert.deepEqual(
    images.map((i) => i.id),
    [amiId],
  );
  assert.equal(images[0]!.disks.length, 2);

  const byEnv = await ferry(['images', 'show', amiId, '--json'], { env: { FERRY_DATA_DIR: server.dataDir } });
  assert.equal(byEnv.code, 0, byEnv.stderr);
  assert.equal((JSON.parse(byEnv.stdout) as { id: string }).id, amiId);

  const check = await ferry(['store', 'check', '--data-dir', server.dataDir]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /no errors found/);

  // --repo still works (and names the same repository).
  const repo = await ferry([
    'images',
    'list',
    '--repo',
    join(server.dataDir, 'store'),
    '--key-file',
    join(server.dataDir, 'store.key'),
    '--json',
  ]);
  assert.equal(repo.code, 0, repo.stderr);
  assert.deepEqual(JSON.parse(repo.stdout), images);
});

test('--repo with --data-dir, a missing data directory and a missing store.key are coded errors', async () => {
  const both = await ferry([
    'images',
    'list',
    '--repo',
    join(server.dataDir, 'store'),
    '--data-dir',
    server.dataDir,
  ]);
  assertCleanFailure(both, 'FERRY_INVALID_ARGUMENT');
  assert.equal(both.code, 2);

  const missing = await ferry(['images', 'list', '--data-dir', join(work, 'nowhere')]);
  assertCleanFailure(missing, 'FERRY_STORE_NOT_FOUND');
  assert.equal(missing.code, 7);

  // A data directory whose key was lost: say so, do not create a new one.
  const keyless = join(work, 'keyless');
  await mkdir(join(keyless, 'store'), { recursive: true });
  const r = await ferry(['images', 'list', '--data-dir', keyless]);
  assertCleanFailure(r, 'FERRY_STORE_KEY_REQUIRED');
});

test('store init --data-dir prepares a store the server then opens', async () => {
  const dir = join(work, 'prepared');
  const init = await ferry(['store', 'init', '--data-dir', dir, '--json']);
  assert.equal(init.code, 0, init.stderr);
  const empty = await ferry(['images', 'list', '--data-dir', dir, '--json']);
  assert.equal(empty.code, 0, empty.stderr);
  assert.deepEqual(JSON.parse(empty.stdout), []);
  const other = await startServer({ dataDir: dir });
  try {
    assert.doesNotMatch(other.log(), /FERRY_/);
  } finally {
    await other.stop();
  }
  const again = await ferry(['store', 'init', '--data-dir', dir]);
  assertCleanFailure(again, 'FERRY_STORE_EXISTS');
  const withKey = await ferry([
    'store',
    'init',
    '--data-dir',
    join(work, 'p2'),
    '--new-key-file',
    join(work, 'k'),
  ]);
  assertCleanFailure(withKey, 'FERRY_INVALID_ARGUMENT');
});
