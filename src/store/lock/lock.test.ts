import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { MemoryBackend } from '../backend/memory/memory.js';
import { RawMasterKey } from '../crypto/master.js';
import { Repository } from '../repo/repository.js';
import { listLocks, removeStaleLocks, RepoLock } from './lock.js';

async function repo(staleMs?: number) {
  const backend = new MemoryBackend();
  const { master } = RawMasterKey.generate();
  await Repository.init(backend, master, { blockSize: 4096, fanout: 16 });
  return Repository.open(backend, master, staleMs ? { lockStaleMs: staleMs } : {});
}

test('locks: gc excludes gc, writes of one image exclude each other, the rest coexist', async () => {
  const r = await repo();
  const gc = await RepoLock.acquire(r, 'gc');
  await assert.rejects(RepoLock.acquire(r, 'gc'), { code: 'FERRY_STORE_LOCKED' });
  const w1 = await RepoLock.acquire(r, 'write', { image: 'ami-0123456789abcdef0' });
  await assert.rejects(RepoLock.acquire(r, 'write', { image: 'ami-0123456789abcdef0' }), {
    code: 'FERRY_STORE_LOCKED',
  });
  const w2 = await RepoLock.acquire(r, 'write', { image: 'ami-0123456789abcdef1' });
  const rd = await RepoLock.acquire(r, 'read');
  assert.equal((await listLocks(r)).filter((l) => l.live).length, 4);
  for (const l of [gc, w1, w2, rd]) await l.release();
  assert.deepEqual(await listLocks(r), []);
  const again = await RepoLock.acquire(r, 'gc');
  await again.release();
});

test('locks: a dead process of this host or a lock not refreshed in time is stale, never in the way', async () => {
  const r = await repo();
  // A lock left by a process that no longer exists (kill -9): pid far beyond pid_max.
  await r.putJson('lock', 'locks/000000000001aaaaaaaaaaaa', {
    id: '000000000001aaaaaaaaaaaa',
    kind: 'gc',
    host: hostname(),
    pid: 2 ** 30,
    created: new Date().toISOString(),
    refreshed: new Date().toISOString(),
  });
  // A lock of another host that stopped refreshing an hour ago.
  await r.putJson('lock', 'locks/000000000002bbbbbbbbbbbb', {
    id: '000000000002bbbbbbbbbbbb',
    kind: 'gc',
    host: 'elsewhere',
    pid: 1,
    created: new Date(Date.now() - 3600_000).toISOString(),
    refreshed: new Date(Date.now() - 3600_000).toISOString(),
  });
  // A live lock of another host.
  await r.putJson('lock', 'locks/000000000003cccccccccccc', {
    id: '000000000003cccccccccccc',
    kind: 'write',
    host: 'elsewhere',
    pid: 1,
    created: new Date().toISOString(),
    refreshed: new Date().toISOString(),
  });
  await r.backend.put('locks/000000000004dddddddddddd', Buffer.from('garbage'));
  const locks = await listLocks(r);
  assert.deepEqual(locks.map((l) => [l.id.slice(0, 12), l.live]).sort(), [
    ['000000000001', false],
    ['000000000002', false],
    ['000000000003', true],
    ['000000000004', false],
  ]);
  const gc = await RepoLock.acquire(r, 'gc'); // the stale gc locks are not in the way
  await gc.release();
  assert.equal(await removeStaleLocks(r), 3);
  assert.equal((await listLocks(r)).length, 1);
});

test('locks: refreshed while held; a holder that could not refresh stops with FERRY_STORE_LOCK_LOST', async () => {
  const r = await repo(100);
  const lock = await RepoLock.acquire(r, 'write', { image: 'ami-0123456789abcdef0' });
  const before = (await listLocks(r))[0]!.refreshed;
  await new Promise((res) => setTimeout(res, 60));
  assert.notEqual((await listLocks(r))[0]!.refreshed, before, 'refreshed in the background');
  lock.assertFresh();
  (r.backend as MemoryBackend).faults.fail = (op, key) => op === 'put' && key.startsWith('locks/');
  await new Promise((res) => setTimeout(res, 150));
  assert.throws(() => lock.assertFresh(), { code: 'FERRY_STORE_LOCK_LOST' });
  (r.backend as MemoryBackend).faults = {};
  await lock.release();
});
