import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BlockSink } from '../../io/block-sink.js';
import { MemorySink } from '../../io/block-sink.js';
import { Appender } from './appender.js';

/** A MemorySink that records each write's offset and length. */
function recording(): { sink: BlockSink; writes: [number, number][]; mem: MemorySink } {
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
  return { sink, writes, mem };
}

test('Appender joins adjacent views of one buffer and keeps file order', async () => {
  const { sink, writes, mem } = recording();
  const out = new Appender(sink);
  const big = Buffer.alloc(1 << 20, 1);
  for (let o = 0; o < big.length; o += 65536) await out.write(o, big.subarray(o, o + 65536));
  await out.write(1 << 20, Buffer.alloc(100, 2)); // small pieces are gathered
  await out.write((1 << 20) + 100, Buffer.alloc(100, 3));
  await out.write(3 << 20, Buffer.alloc(10, 4)); // a gap starts a new run
  await out.drain();
  assert.deepEqual(writes, [
    [0, 1 << 20],
    [1 << 20, 200],
    [3 << 20, 10],
  ]);
  const c = mem.contents();
  assert.equal(c[(1 << 20) - 1], 1);
  assert.equal(c[(1 << 20) + 150], 3);
  assert.equal(c[(3 << 20) + 9], 4);
});

test('Appender surfaces a failed write at drain', async () => {
  const mem = new MemorySink();
  const sink: BlockSink = {
    name: 'bad',
    seekable: true,
    position: 0,
    write: async () => {
      throw new Error('disk full');
    },
    truncate: (size) => mem.truncate(size),
    close: async () => {},
  };
  const out = new Appender(sink);
  await out.write(0, Buffer.alloc(10));
  await assert.rejects(out.drain(), /disk full/);
});
