import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DIALECTS, openTestDatabase } from '../../test/helpers/databases.js';
import { repositories, type JobRecord, type ServerRecord } from './index.js';

const server = (i: number, patch: Partial<ServerRecord> = {}): ServerRecord => ({
  serverId: `s-${String(i).padStart(4, '0')}`,
  connectorId: 'c-local',
  vmManagerId: 'vmm-1',
  vmId: `vm-${i}`,
  sortKey: `vmm-1/vm-${String(i).padStart(4, '0')}`,
  vmName: `VM ${i}`,
  vmManagerName: 'folder',
  vmManagerType: null,
  vmPath: `/images/vm-${i}`,
  facts: { disks: [{ name: 'disk0.qcow2', size: 1024 * i }] },
  replicationJobId: null,
  replicationJobTerminated: false,
  importedAt: 1_700_000_000_000,
  ...patch,
});

const job = (id: string, createdAt: number, state = 'PENDING'): JobRecord => ({
  replicationJobId: id,
  serverId: 's-0001',
  server: { serverId: 's-0001' },
  seedReplicationTime: createdAt,
  frequency: 12,
  runOnce: false,
  nextRunAt: createdAt,
  licenseType: null,
  roleName: null,
  description: 'd',
  numberOfRecentAmisToKeep: 0,
  encrypted: false,
  kmsKeyId: null,
  latestAmiId: null,
  state,
  statusMessage: '',
  consecutiveFailures: 0,
  appId: null,
  createdAt,
  updatedAt: createdAt,
});

for (const dialect of DIALECTS) {
  describe(`repositories (${dialect})`, () => {
    test('servers page by key with no repeat and no gap, and filter by VM address', async () => {
      const t = await openTestDatabase(dialect);
      try {
        const r = repositories(t.db);
        for (let i = 1; i <= 7; i++) await r.servers.upsert(server(i));
        const seen: string[] = [];
        let after;
        let pages = 0;
        do {
          const p = await r.servers.page({ after, limit: 3 });
          seen.push(...p.items.map((s) => s.serverId));
          after = p.next;
          pages++;
        } while (after);
        assert.equal(pages, 3);
        assert.deepEqual(seen, [...seen].sort());
        assert.equal(new Set(seen).size, 7);
        const exact = await r.servers.page({ limit: 7 });
        assert.equal(exact.next, undefined, 'no token when nothing follows');
        const only = await r.servers.page({ limit: 10 }, [
          { vmManagerId: 'vmm-1', vmId: 'vm-2' },
          { vmManagerId: 'vmm-1', vmId: 'vm-5' },
          { vmManagerId: 'other', vmId: 'vm-3' },
        ]);
        assert.deepEqual(
          only.items.map((s) => s.serverId),
          ['s-0002', 's-0005'],
        );
        assert.deepEqual((await r.servers.get('s-0003'))?.facts, {
          disks: [{ name: 'disk0.qcow2', size: 3072 }],
        });
      } finally {
        await t.close();
      }
    });

    test('re-importing a server keeps its replication job link', async () => {
      const t = await openTestDatabase(dialect);
      try {
        const r = repositories(t.db);
        await r.servers.upsert(server(1));
        await r.servers.update('s-0001', { replicationJobId: 'sms-job-1', replicationJobTerminated: false });
        await r.servers.upsert(server(1, { vmName: 'renamed' }));
        const s = await r.servers.get('s-0001');
        assert.equal(s?.vmName, 'renamed');
        assert.equal(s?.replicationJobId, 'sms-job-1');
        assert.equal(s?.replicationJobTerminated, false);
        assert.equal(await r.servers.count(), 1);
        assert.equal(await r.servers.deleteAll(), 1);
      } finally {
        await t.close();
      }
    });

    test('jobs: compare-and-set state updates, due jobs, counts by state', async () => {
      const t = await openTestDatabase(dialect);
      try {
        const r = repositories(t.db);
        await r.jobs.insert(job('j1', 1000));
        await r.jobs.insert(job('j2', 2000));
        await r.jobs.insert(job('j3', 3000, 'DELETED'));
        assert.equal(await r.jobs.update('j1', { state: 'ACTIVE' }, { field: 'state', in: ['PENDING'] }), 1);
        assert.equal(await r.jobs.update('j1', { state: 'FAILED' }, { field: 'state', in: ['PENDING'] }), 0);
        assert.equal((await r.jobs.get('j1'))?.state, 'ACTIVE');
        const due = await r.jobs.due(2500, ['PENDING', 'ACTIVE'], 10);
        assert.deepEqual(
          due.map((j) => j.replicationJobId),
          ['j1', 'j2'],
        );
        assert.deepEqual(await r.jobs.countByState(), { ACTIVE: 1, PENDING: 1, DELETED: 1 });
        const page = await r.jobs.page({ limit: 10 }, ['PENDING', 'ACTIVE']);
        assert.deepEqual(
          page.items.map((j) => j.replicationJobId),
          ['j1', 'j2'],
        );
        assert.equal((await r.jobs.get('j2'))?.runOnce, false);
      } finally {
        await t.close();
      }
    });

    test('settings and apps by client token', async () => {
      const t = await openTestDatabase(dialect);
      try {
        const r = repositories(t.db);
        assert.equal(await r.settings.get('catalog'), undefined);
        await r.settings.set('catalog', 'a');
        await r.settings.set('catalog', 'b');
        assert.equal(await r.settings.get('catalog'), 'b');
        await r.apps.insert({
          appId: 'app-1',
          clientToken: 'tok',
          body: { name: 'n' },
          replicationConfig: null,
          launchConfig: null,
          validationConfig: null,
          validationOutputs: [],
          createdAt: 1,
          updatedAt: 1,
        });
        assert.equal((await r.apps.byClientToken('tok'))?.appId, 'app-1');
        await assert.rejects(
          r.apps.insert({
            appId: 'app-2',
            clientToken: 'tok',
            body: {},
            replicationConfig: null,
            launchConfig: null,
            validationConfig: null,
            validationOutputs: [],
            createdAt: 2,
            updatedAt: 2,
          }),
          { code: 'FERRY_DATABASE_CONFLICT' },
        );
      } finally {
        await t.close();
      }
    });
  });
}
