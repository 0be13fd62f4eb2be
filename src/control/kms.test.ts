import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openTestDatabase } from '../../test/helpers/databases.js';
import { makeImagesDir } from '../../test/helpers/fixtures.js';
import { createFolderConnector } from '../connectors/index.js';
import { MemoryBackend, RawMasterKey, Repository } from '../store/index.js';
import { ManualClock } from './clock.js';
import { ControlPlane } from './control-plane.js';

test('kmsKeyId names a key slot of the image store; anything else is refused', async () => {
  const t = await openTestDatabase('sqlite');
  const store = await Repository.init(new MemoryBackend(), RawMasterKey.generate().master);
  const control = new ControlPlane({
    db: t.db,
    masterKey: Buffer.alloc(32, 7),
    clock: new ManualClock(Date.now()),
    store,
  });
  try {
    const images = await makeImagesDir(2, 64 * 1024);
    await control.connectors.attach(
      await createFolderConnector({ connectorId: 'c', imagesDir: images, version: 't' }),
    );
    await control.catalog.importServerCatalog();
    const [a, b] = (await control.catalog.getServers({})).serverList.map((s) => s.serverId);
    const slot = (await store.listSlots())[0]!.id;
    const later = Date.now() + 3600_000;
    const ok = await control.jobs.createReplicationJob({
      serverId: a!,
      seedReplicationTime: later,
      frequency: 12,
      encrypted: true,
      kmsKeyId: slot,
    });
    const job = (await control.jobs.getReplicationJobs({ replicationJobId: ok.replicationJobId }))
      .replicationJobList[0]!;
    assert.equal(job.kmsKeyId, slot);
    await assert.rejects(
      control.jobs.createReplicationJob({
        serverId: b!,
        seedReplicationTime: later,
        frequency: 12,
        encrypted: true,
        kmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/nope',
      }),
      (e: { code?: string; message?: string }) =>
        e.code === 'FERRY_INVALID_ARGUMENT' && /not a key slot/.test(e.message ?? ''),
    );
    await assert.rejects(
      control.jobs.updateReplicationJob({ replicationJobId: ok.replicationJobId, kmsKeyId: 'nope' }),
      /not a key slot/,
    );
  } finally {
    await t.close();
  }
});
