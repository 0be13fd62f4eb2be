import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool, SLAB_BYTES } from './buffer-pool.js';

const KiB = 1024;

test('requests of any length are carved one after the other out of one slab', () => {
  const pool = new BufferPool();
  const a = pool.acquire(768 * KiB);
  const b = pool.acquire(100);
  assert.equal(a.length, 768 * KiB);
  assert.equal(b.length, 100);
  assert.equal(a.buffer, b.buffer);
  assert.equal(a.buffer.byteLength, SLAB_BYTES);
  assert.equal(b.byteOffset, a.byteOffset + a.length, 'next to each other: no bytes wasted');
});

test('a slab is reused once every view is released and the pool has moved on', () => {
  const pool = new BufferPool();
  const a = pool.acquire(3 * 1024 * KiB);
  const b = pool.acquire(512 * KiB);
  const c = pool.acquire(1024 * KiB); // does not fit: a new slab
  assert.notEqual(c.buffer, a.buffer);
  pool.release(a);
  pool.release(b.subarray(0, 100 * KiB));
  const d = pool.acquire(SLAB_BYTES); // the first slab is partly held: a new one
  assert.notEqual(d.buffer, a.buffer);
  pool.release(b.subarray(100 * KiB));
  const e = pool.acquire(SLAB_BYTES);
  assert.equal(e.buffer, a.buffer, 'every byte of the first slab is back');
  assert.equal(e.length, SLAB_BYTES);
});

test('a full slab comes back as soon as its views do', () => {
  const pool = new BufferPool();
  const halves = [pool.acquire(SLAB_BYTES / 2), pool.acquire(SLAB_BYTES / 2)];
  for (const h of halves) pool.release(h);
  assert.equal(pool.acquire(SLAB_BYTES).buffer, halves[0]?.buffer);
});

test('requests larger than a slab get their own buffer, reused by size', () => {
  const pool = new BufferPool();
  const big = pool.acquire(SLAB_BYTES * 2);
  assert.equal(big.buffer.byteLength, SLAB_BYTES * 2);
  pool.release(big);
  assert.equal(pool.acquire(SLAB_BYTES * 2).buffer, big.buffer);
});

test('the pool ignores foreign buffers and refuses to release more than was held', () => {
  const pool = new BufferPool();
  pool.release(Buffer.alloc(16)); // not the pool's: nothing happens
  const a = pool.acquire(SLAB_BYTES);
  pool.retain(a.subarray(0, 100));
  pool.release(a);
  pool.release(a.subarray(0, 100));
  const b = pool.acquire(SLAB_BYTES);
  assert.equal(b.buffer, a.buffer);
  pool.release(b.subarray(0, SLAB_BYTES - 100));
  assert.throws(() => pool.release(b.subarray(0, 200)), /more bytes released than held/);
});

test('idle buffers are capped', () => {
  const pool = new BufferPool(2 * SLAB_BYTES);
  const bufs = [pool.acquire(SLAB_BYTES), pool.acquire(SLAB_BYTES), pool.acquire(SLAB_BYTES)];
  for (const b of bufs) pool.release(b);
  const again = [pool.acquire(SLAB_BYTES), pool.acquire(SLAB_BYTES), pool.acquire(SLAB_BYTES)];
  assert.equal(again.filter((x) => bufs.some((b) => b.buffer === x.buffer)).length, 2);
});
