import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../errors/index.js';
import * as P from './protocol.js';
import {
  encodeBlockStatusChunk,
  encodeErrorChunk,
  insideExport,
  parseClientFlags,
  parseGoData,
  parseMetaContextData,
  parseOptionHeader,
  parseRequest,
} from './wire.js';

const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
const u16 = (v: number) => Buffer.from([v >> 8, v & 255]);
const str = (s: string | Buffer) => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([u32(b.length), b]);
};

const rejected = (fn: () => unknown) =>
  assert.throws(fn, (e: unknown) => FerryError.is(e) && e.code === 'FERRY_NBD_CLIENT_REJECTED');

test('GO data: name, count and info types must add up exactly', () => {
  assert.deepEqual(parseGoData(Buffer.concat([str('disk0'), u16(2), u16(3), u16(1)])), {
    name: 'disk0',
    infos: [3, 1],
  });
  assert.equal(parseGoData(Buffer.concat([str('disk0'), u16(2), u16(3)])), undefined); // short
  assert.equal(parseGoData(Buffer.concat([str('disk0'), u16(0), Buffer.alloc(1)])), undefined); // trailing
  assert.equal(parseGoData(Buffer.concat([u32(0xffffffff), u16(0)])), undefined); // name too long
  assert.equal(parseGoData(Buffer.concat([str('a\0b'), u16(0)])), undefined); // NUL
  assert.equal(parseGoData(Buffer.concat([str(Buffer.from([0xff, 0xfe])), u16(0)])), undefined); // not UTF-8
  assert.equal(parseGoData(Buffer.alloc(3)), undefined);
});

test('meta context data: a query count the data cannot hold is invalid (no allocation by count)', () => {
  const ok = Buffer.concat([str('d'), u32(2), str('base:allocation'), str('qemu:x')]);
  assert.deepEqual(parseMetaContextData(ok), { name: 'd', queries: ['base:allocation', 'qemu:x'] });
  assert.equal(parseMetaContextData(Buffer.concat([str('d'), u32(0xffffffff)])), undefined);
  assert.equal(
    parseMetaContextData(Buffer.concat([str('d'), u32(1), u32(100), Buffer.from('x')])),
    undefined,
  );
  assert.equal(parseMetaContextData(Buffer.concat([ok, Buffer.alloc(1)])), undefined);
});

test('option header: wrong magic and lengths over the cap are rejected before any read', () => {
  const h = (magic: bigint, len: number) => {
    const b = Buffer.alloc(16);
    b.writeBigUInt64BE(magic, 0);
    b.writeUInt32BE(P.NBD_OPT_GO, 8);
    b.writeUInt32BE(len, 12);
    return b;
  };
  assert.deepEqual(parseOptionHeader(h(P.NBD_OPTS_MAGIC, 100)), { option: P.NBD_OPT_GO, length: 100 });
  rejected(() => parseOptionHeader(h(P.NBD_OPTS_MAGIC, P.MAX_OPTION_BYTES + 1)));
  rejected(() => parseOptionHeader(h(1n, 0)));
});

test('client flags: unknown bits and non-fixed newstyle are rejected', () => {
  assert.deepEqual(parseClientFlags(u32(3)), { noZeroes: true });
  assert.deepEqual(parseClientFlags(u32(1)), { noZeroes: false });
  rejected(() => parseClientFlags(u32(0)));
  rejected(() => parseClientFlags(u32(1 | 4)));
});

test('requests: magic checked, huge offsets become -1 and are never inside an export', () => {
  const r = Buffer.alloc(28);
  r.writeUInt32BE(P.NBD_REQUEST_MAGIC, 0);
  r.writeBigUInt64BE(2n ** 60n, 16);
  r.writeUInt32BE(10, 24);
  const req = parseRequest(r);
  assert.equal(req.offset, -1);
  assert.equal(insideExport(req.offset, req.length, Number.MAX_SAFE_INTEGER), false);
  assert.equal(insideExport(0, 0, 10), false);
  assert.equal(insideExport(5, 5, 10), true);
  assert.equal(insideExport(6, 5, 10), false);
  rejected(() => parseRequest(Buffer.alloc(28)));
});

test('reply encoders: error messages are capped at 4096 bytes; block status lengths add up', () => {
  const e = encodeErrorChunk(1, Buffer.alloc(8), P.EIO, 'x'.repeat(10_000));
  assert.equal(e.readUInt32BE(16), 6 + 4096);
  assert.equal(e.readUInt16BE(24), 4096);
  const bs = encodeBlockStatusChunk(1, Buffer.alloc(8), 1, [
    { length: 512, flags: 0 },
    { length: 1024, flags: 3 },
  ]);
  assert.equal(bs.readUInt32BE(16), 4 + 16);
  assert.equal(bs.length, 20 + 4 + 16);
});
