import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TableCache } from './cache.js';

test('TableCache shares concurrent loads, evicts the least recently used, forgets failures', async () => {
  const loads: number[] = [];
  const cache = new TableCache(2, async (off) => {
    loads.push(off);
    if (off === 99) throw new Error('boom');
    return Buffer.from([off]);
  });
  const [a, b] = await Promise.all([cache.get(1), cache.get(1)]);
  assert.equal(a, b);
  await cache.get(2);
  await cache.get(1); // 1 is now the most recent
  await cache.get(3); // evicts 2
  assert.equal(cache.size, 2);
  await cache.get(1);
  await cache.get(2);
  assert.deepEqual(loads, [1, 2, 3, 2]);
  await assert.rejects(cache.get(99));
  await assert.rejects(cache.get(99));
  assert.deepEqual(loads.slice(-2), [99, 99]);
});
