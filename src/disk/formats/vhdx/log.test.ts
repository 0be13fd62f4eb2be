import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MemorySource } from '../../io/byte-source.js';
import { replayLog, type LogWrite } from './log.js';
import { flatten, OverlaySource } from './overlay.js';
import { buildLogEntry, type TestDescriptor } from './testing.js';

const GUID = '0a0b0c0d-1111-2222-3333-444455556666';
const MiB = 1 << 20;
const LOG_OFFSET = MiB;

function sector(fill: number): Buffer {
  const b = Buffer.alloc(4096, fill);
  b.write('HEAD', 0); // leading bytes travel in the descriptor
  b.write('TAIL', 4092); // trailing bytes too
  return b;
}

function log(entries: Array<[number, Buffer]>, length = MiB): Buffer {
  const buf = Buffer.alloc(length);
  for (const [at, e] of entries) {
    if (at + e.length <= length) e.copy(buf, at);
    else {
      e.copy(buf, at, 0, length - at);
      e.copy(buf, 0, length - at);
    }
  }
  return buf;
}

function entry(
  sequence: bigint,
  tail: number,
  descriptors: TestDescriptor[],
  over: Partial<{ guid: string; flushed: number; last: number }> = {},
): Buffer {
  return buildLogEntry({
    sequence,
    tail,
    logGuid: over.guid ?? GUID,
    flushedFileOffset: over.flushed ?? 4 * MiB,
    lastFileOffset: over.last ?? 4 * MiB,
    descriptors,
  });
}

const opts = { logGuid: GUID, logOffset: LOG_OFFSET, fileSize: 8 * MiB };

test('a single self-tailed entry replays its data and zero descriptors, leading/trailing bytes restored', () => {
  const data = sector(0x5a);
  const e = entry(7n, 0, [
    { kind: 'data', fileOffset: 3 * MiB, data },
    { kind: 'zero', fileOffset: 5 * MiB, length: 8192 },
  ]);
  const r = replayLog('t', log([[0, e]]), opts);
  assert.equal(r.entries, 1);
  assert.equal(r.headSequence, 7n);
  assert.equal(r.writes.length, 2);
  assert.deepEqual(r.writes[0]?.data, data);
  assert.deepEqual({ ...r.writes[1] }, { start: 5 * MiB, end: 5 * MiB + 8192 });
  assert.equal(r.fileSize, 8 * MiB);
});

test('the active sequence is the valid one with the highest head, replayed from its tail', () => {
  const a = entry(10n, 0, [{ kind: 'data', fileOffset: 2 * MiB, data: sector(1) }]);
  const b = entry(11n, 0, [{ kind: 'data', fileOffset: 2 * MiB, data: sector(2) }]);
  // A stale sequence elsewhere with a lower head.
  const stale = entry(5n, 512 * 1024, [{ kind: 'data', fileOffset: 2 * MiB, data: sector(9) }]);
  const buf = log([
    [0, a],
    [a.length, b],
    [512 * 1024, stale],
  ]);
  const r = replayLog('t', buf, opts);
  assert.equal(r.entries, 2);
  assert.deepEqual(
    r.writes.map((w) => w.data?.[100]),
    [1, 2],
  );
  // A newer head whose tail is not in its run (its older entries were overwritten) is not valid.
  const orphan = entry(20n, 256 * 1024, [{ kind: 'data', fileOffset: 2 * MiB, data: sector(3) }]);
  const r2 = replayLog(
    't',
    log([
      [0, a],
      [a.length, b],
      [768 * 1024, orphan],
    ]),
    opts,
  );
  assert.equal(r2.headSequence, 11n);
});

test("a sequence starts at its head's tail, even inside a longer run, and may wrap around the ring", () => {
  const length = MiB;
  const at0 = length - 3 * 4096;
  // e0 is an older, already-applied entry of the same run: the head's tail skips it.
  const e0 = entry(2n, at0, [{ kind: 'zero', fileOffset: 3 * MiB, length: 4096 }]);
  const e1 = entry(3n, at0 + 4096, [{ kind: 'zero', fileOffset: 2 * MiB, length: 4096 }]);
  const e2 = entry(4n, at0 + 4096, [{ kind: 'data', fileOffset: 2 * MiB, data: sector(4) }]);
  assert.equal(e2.length, 8192); // starts in the last sector, its data sector wraps to 0
  const buf = log([
    [at0, e0],
    [at0 + 4096, e1],
    [at0 + 8192, e2],
  ]);
  const r = replayLog('t', buf, opts);
  assert.equal(r.entries, 2);
  assert.equal(r.writes.length, 2);
  assert.equal(r.writes[0]?.start, 2 * MiB);
  assert.equal(r.writes[1]?.data?.[100], 4);
});

test('entries with a wrong CRC, GUID or sequence are not part of any sequence', () => {
  const good = entry(2n, 0, [{ kind: 'data', fileOffset: 2 * MiB, data: sector(1) }]);
  const badCrc = Buffer.from(entry(3n, 0, [{ kind: 'data', fileOffset: 2 * MiB, data: sector(2) }]));
  badCrc[5000] = (badCrc[5000] as number) ^ 1;
  const r = replayLog(
    't',
    log([
      [0, good],
      [good.length, badCrc],
    ]),
    opts,
  );
  assert.equal(r.headSequence, 2n);
  const otherGuid = entry(3n, 0, [], { guid: '99999999-1111-2222-3333-444455556666' });
  assert.equal(
    replayLog(
      't',
      log([
        [0, good],
        [good.length, otherGuid],
      ]),
      opts,
    ).headSequence,
    2n,
  );
});

test('a log with no valid sequence, a truncated file or writes into the headers or log is refused', () => {
  assert.throws(() => replayLog('t', log([]), opts), { code: 'FERRY_IMAGE_CORRUPT' });
  const corrupt = Buffer.from(entry(3n, 0, []));
  corrupt[100] = 1;
  assert.throws(() => replayLog('t', log([[0, corrupt]]), opts), { code: 'FERRY_IMAGE_CORRUPT' });
  // Valid entries, but the head's tail points at nothing valid.
  const orphan = entry(9n, 4096 * 10, []);
  assert.throws(() => replayLog('t', log([[0, orphan]]), opts), /no complete sequence/);
  const flushed = entry(1n, 0, [], { flushed: 64 * MiB });
  assert.throws(() => replayLog('t', log([[0, flushed]]), opts), { code: 'FERRY_IMAGE_TRUNCATED' });
  const header = entry(1n, 0, [{ kind: 'data', fileOffset: 64 * 1024, data: sector(1) }]);
  assert.throws(() => replayLog('t', log([[0, header]]), opts), /headers/);
  const intoLog = entry(1n, 0, [{ kind: 'zero', fileOffset: LOG_OFFSET - 4096, length: 8192 }]);
  assert.throws(() => replayLog('t', log([[0, intoLog]]), opts), /into the log/);
  const absurd = entry(1n, 0, [{ kind: 'zero', fileOffset: 2 * MiB, length: 2 ** 60 }]);
  assert.throws(() => replayLog('t', log([[0, absurd]]), opts), { code: 'FERRY_IMAGE_CORRUPT' });
});

test('LastFileOffset and writes past the end grow the replayed file', () => {
  const e = entry(1n, 0, [{ kind: 'data', fileOffset: 20 * MiB, data: sector(7) }], { last: 16 * MiB });
  assert.equal(replayLog('t', log([[0, e]]), opts).fileSize, 20 * MiB + 4096);
});

test('forged logs whose every sector claims a log-sized entry fail fast', () => {
  const buf = Buffer.alloc(8 * MiB);
  const one = entry(1n, 0, []);
  for (let at = 0; at < buf.length; at += 4096) {
    one.copy(buf, at, 0, 64);
    buf.writeUInt32LE(buf.length, at + 8); // EntryLength = whole log; CRC will not match
  }
  const t = performance.now();
  assert.throws(() => replayLog('t', buf, { ...opts, fileSize: 64 * MiB }), { code: 'FERRY_IMAGE_CORRUPT' });
  assert.ok(performance.now() - t < 2000);
});

test('flatten: later writes win, zero and data segments merge as expected (vs. a naive replay)', async () => {
  const size = 64 * 4096;
  for (let round = 0; round < 30; round++) {
    const writes: LogWrite[] = [];
    for (let i = 0; i < 40; i++) {
      const start = Math.floor(Math.random() * 60) * 4096;
      if (Math.random() < 0.5) writes.push({ start, end: start + 4096, data: randomBytes(4096) });
      else writes.push({ start, end: start + Math.ceil(Math.random() * 4) * 4096 });
    }
    const base = randomBytes(size);
    const expected = Buffer.from(base);
    for (const w of writes) {
      if (w.data) w.data.copy(expected, w.start);
      else expected.fill(0, w.start, Math.min(w.end, size));
    }
    const segs = flatten(writes);
    for (let i = 1; i < segs.length; i++)
      assert.ok((segs[i - 1]?.end as number) <= (segs[i]?.start as number));
    const src = new OverlaySource(new MemorySource(base), segs, size);
    assert.deepEqual(await src.read(0, size), expected.subarray(0, size));
    assert.deepEqual(await src.read(4096 + 17, 9000), expected.subarray(4096 + 17, 4096 + 17 + 9000));
  }
});

test('OverlaySource reads zeros past the real end, up to the replayed size', async () => {
  const src = new OverlaySource(new MemorySource(Buffer.alloc(100, 1)), [], 300);
  const out = await src.read(50, 200);
  assert.equal(out[49], 1);
  assert.equal(out[50], 0);
  await assert.rejects(src.read(250, 100), { code: 'FERRY_IMAGE_TRUNCATED' });
});
