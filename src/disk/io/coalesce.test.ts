import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BlockSink } from './block-sink.js';
import { MemorySink } from './block-sink.js';
import { BufferPool, SLAB_BYTES } from './buffer-pool.js';
import { CoalescingWriter } from './coalesce.js';

/** A MemorySink that records each write's offset and length (writev counts as one write). */
class CountingSink extends MemorySink {
  writes: [number, number][] = [];
  vectored = 0;
  override async write(offset: number, data: Buffer): Promise<void> {
    this.writes.push([offset, data.length]);
    return super.write(offset, data);
  }
  async writev(offset: number, parts: readonly Buffer[]): Promise<void> {
    this.vectored++;
    const all = Buffer.concat(parts);
    this.writes.push([offset, all.length]);
    return super.write(offset, all);
  }
}

test('views of one buffer that continue in file and memory become one write, without copies', async () => {
  const sink = new CountingSink();
  const out = new CoalescingWriter(sink as BlockSink);
  const chunk = Buffer.alloc(256 * 1024, 7);
  for (let o = 0; o < chunk.length; o += 65536) await out.write(1000 + o, chunk.subarray(o, o + 65536));
  await out.flush(); // flush starts the write; drain below waits for it
  await out.write(500_000, chunk.subarray(0, 512)); // not contiguous in the file
  await out.write(500_512, chunk.subarray(1024, 1536)); // contiguous in the file, not in memory
  await out.write(501_024, Buffer.alloc(10, 1)); // another buffer, still contiguous
  assert.equal(out.end, 501_034);
  await out.drain();
  assert.deepEqual(sink.writes, [
    [1000, 262144],
    [500_000, 1034],
  ]);
  assert.equal(sink.vectored, 1, 'parts from different buffers go out in one gather write');
  const c = sink.contents();
  assert.ok(c.subarray(1000, 263144).equals(chunk));
  assert.equal(c[501_033], 1);
});

test('without writev, gathered parts are copied together; a gap starts a new write', async () => {
  const mem = new MemorySink();
  const writes: [number, number][] = [];
  const sink: BlockSink = {
    name: 'rec',
    seekable: true,
    get position() {
      return mem.position;
    },
    write: (offset, data) => {
      writes.push([offset, data.length]);
      return mem.write(offset, data);
    },
    truncate: (size) => mem.truncate(size),
    close: () => mem.close(),
  };
  const out = new CoalescingWriter(sink, { limitBytes: 1 << 20 });
  const big = Buffer.alloc(2 << 20, 1);
  for (let o = 0; o < big.length; o += 65536) await out.write(o, big.subarray(o, o + 65536));
  await out.write(2 << 20, Buffer.alloc(100, 2));
  await out.write((2 << 20) + 100, Buffer.alloc(100, 3));
  await out.write(3 << 20, Buffer.alloc(10, 4));
  await out.drain();
  assert.deepEqual(writes, [
    [0, 1 << 20],
    [1 << 20, 1 << 20],
    [2 << 20, 200],
    [3 << 20, 10],
  ]);
  const c = mem.contents();
  assert.equal(c[(2 << 20) + 150], 3);
  assert.equal(c[(3 << 20) + 9], 4);
});

test('a failed write surfaces at drain', async () => {
  const sink: BlockSink = {
    name: 'bad',
    seekable: true,
    position: 0,
    write: async () => {
      throw new Error('disk full');
    },
    truncate: async () => {},
    close: async () => {},
  };
  const out = new CoalescingWriter(sink);
  await out.write(0, Buffer.alloc(10));
  await assert.rejects(out.drain(), /disk full/);
});

test('with a pool, written views go back to it, and only once nobody holds any byte', async () => {
  const pool = new BufferPool();
  const sink = new CountingSink();
  const out = new CoalescingWriter(sink as BlockSink, { pool });
  const buf = pool.acquire(SLAB_BYTES);
  buf.fill(9);
  // The lender's protocol: retain what is handed on, release its own hold when done.
  for (let o = 0; o < buf.length; o += 65536) {
    const view = buf.subarray(o, o + 65536);
    pool.retain(view);
    await out.write(o, view);
  }
  pool.release(buf);
  assert.notEqual(pool.acquire(SLAB_BYTES).buffer, buf.buffer, 'still held by the writer');
  await out.drain();
  assert.equal(pool.acquire(SLAB_BYTES).buffer, buf.buffer, 'reused once written');
  assert.deepEqual(sink.writes, [[0, SLAB_BYTES]]);
  assert.ok(
    sink
      .contents()
      .subarray(0, SLAB_BYTES)
      .every((b) => b === 9),
  );
});
