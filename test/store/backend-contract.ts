/**
 * The shared back-end test matrix: every back end (memory, local, S3) must pass these.
 * `make` returns a fresh, empty back end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listAll, type Backend } from '../../src/store/index.js';

export function backendContract(name: string, make: () => Promise<Backend>): void {
  void test(`${name}: put/get/exists/delete round trip, overwrite replaces`, async () => {
    const b = await make();
    assert.equal(await b.exists('config'), false);
    await b.put('config', Buffer.from('one'));
    assert.equal(await b.exists('config'), true);
    assert.equal((await b.get('config')).toString(), 'one');
    await b.put('config', Buffer.from('two!'));
    assert.equal((await b.get('config')).toString(), 'two!');
    await b.delete('config');
    assert.equal(await b.exists('config'), false);
    await b.delete('config'); // idempotent
    await b.close();
  });

  void test(`${name}: ranged get returns exactly the range, or FERRY_STORE_TRUNCATED past the end`, async () => {
    const b = await make();
    const data = Buffer.from([...Array(1000).keys()].map((i) => i & 0xff));
    await b.put('data/ab/abcd', data);
    assert.deepEqual(await b.get('data/ab/abcd', { offset: 10, length: 20 }), data.subarray(10, 30));
    assert.deepEqual(await b.get('data/ab/abcd', { offset: 1000, length: 0 }), Buffer.alloc(0));
    await assert.rejects(b.get('data/ab/abcd', { offset: 990, length: 20 }), {
      code: 'FERRY_STORE_TRUNCATED',
    });
    await assert.rejects(b.get('data/ab/missing'), { code: 'FERRY_STORE_MISSING_CHUNK' });
    await b.close();
  });

  void test(`${name}: list walks nested prefixes with sizes, and nothing else`, async () => {
    const b = await make();
    await b.put('data/aa/aa01', Buffer.alloc(5));
    await b.put('data/bb/bb02', Buffer.alloc(7));
    await b.put('index/0001', Buffer.alloc(3));
    await b.put('config', Buffer.alloc(1));
    const data = (await listAll(b, 'data/')).sort((x, y) => x.key.localeCompare(y.key));
    assert.deepEqual(data, [
      { key: 'data/aa/aa01', size: 5 },
      { key: 'data/bb/bb02', size: 7 },
    ]);
    assert.deepEqual(await listAll(b, 'images/'), []);
    assert.equal((await listAll(b, '')).length, 4);
    await b.close();
  });

  void test(`${name}: keys that could escape the root or smuggle a URL are refused`, async () => {
    const b = await make();
    for (const key of ['../x', '/etc/passwd', 'a/../b', 'A', 'http://x', 'a//b', '', 'a/']) {
      await assert.rejects(b.put(key, Buffer.alloc(1)), { code: 'FERRY_INTERNAL' }, key);
    }
    await b.close();
  });

  void test(`${name}: a put of several buffers stores their concatenation`, async () => {
    const b = await make();
    await b.put('index/0002', [Buffer.from('ab'), Buffer.alloc(0), Buffer.from('cde')]);
    assert.equal((await b.get('index/0002')).toString(), 'abcde');
    await b.close();
  });

  void test(`${name}: concurrent puts of different keys all land`, async () => {
    const b = await make();
    await Promise.all(Array.from({ length: 20 }, (_, i) => b.put(`locks/l${i}`, Buffer.from(String(i)))));
    assert.equal((await listAll(b, 'locks/')).length, 20);
    await b.close();
  });
}

export function largeObjectContract(name: string, make: () => Promise<Backend>): void {
  void test(`${name}: objects above the multipart threshold round-trip (and ranged reads inside them)`, async () => {
    const b = await make();
    const big = Buffer.alloc(13 * 1024 * 1024 + 77);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    await b.put('data/11/big', [big.subarray(0, 1000), big.subarray(1000)]);
    assert.equal((await listAll(b, 'data/'))[0]?.size, big.length);
    assert.deepEqual(
      await b.get('data/11/big', { offset: 12 * 1024 * 1024, length: 4096 }),
      big.subarray(12 * 1024 * 1024, 12 * 1024 * 1024 + 4096),
    );
    assert.ok((await b.get('data/11/big')).equals(big));
    await b.close();
  });
}
