import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BlockSink } from '../../io/block-sink.js';
import { MemorySink } from '../../io/block-sink.js';
import { ViewCoalescer } from './views.js';

class CountingSink extends MemorySink {
  writes: [number, number][] = [];
  override async write(offset: number, data: Buffer): Promise<void> {
    this.writes.push([offset, data.length]);
    return super.write(offset, data);
  }
}

test('views of one buffer that continue in file and memory become one write, without copies', async () => {
  const sink = new CountingSink();
  const v = new ViewCoalescer(sink as BlockSink);
  const chunk = Buffer.alloc(256 * 1024, 7);
  for (let o = 0; o < chunk.length; o += 65536) await v.write(1000 + o, chunk.subarray(o, o + 65536));
  await v.write(1000 + chunk.length, Buffer.alloc(10, 1)); // another buffer: a new write
  await v.write(500_000, chunk.subarray(0, 512)); // not contiguous in the file
  await v.write(500_512, chunk.subarray(1024, 1536)); // contiguous in the file, not in memory
  await v.flush();
  assert.deepEqual(sink.writes, [
    [1000, 262144],
    [263144, 10],
    [500_000, 512],
    [500_512, 512],
  ]);
  assert.equal(v.end, 501_024);
  assert.ok(sink.contents().subarray(1000, 263144).equals(chunk));
});
