import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_BLOCK_STATUS_EXTENTS,
  NBD_REP_MAGIC,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_ERROR_OFFSET,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
} from './protocol.js';
import {
  checkChunkLength,
  checkTiled,
  encodeGoData,
  encodeMetaContextData,
  encodeOption,
  encodeRequest,
  parseBlockStatus,
  parseDataChunkOffset,
  parseErrorChunk,
  parseHoleChunk,
  parseInfo,
  parseMetaContext,
  parseOptionReplyHeader,
  parseReplyHeader,
} from './wire.js';
import { codeOf } from '../../../../test/helpers/errors.js';

const be32 = (...v: number[]) => {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, i) => b.writeUInt32BE(x >>> 0, 4 * i));
  return b;
};
const be64 = (v: bigint | number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
};
const be16 = (v: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
};

test('requests and options are encoded as the spec lays them out', () => {
  assert.equal(
    encodeRequest(7, 0, 0x0102030405, 2 ** 40, 65536).toString('hex'),
    '25609513' + '0000' + '0007' + '0000000102030405' + '0000010000000000' + '00010000',
  );
  assert.equal(encodeOption(8).toString('hex'), '49484156454f5054' + '00000008' + '00000000');
  assert.equal(encodeGoData('d', [3]).toString('hex'), '00000001' + '64' + '0001' + '0003');
  assert.equal(
    encodeMetaContextData('', ['base:allocation']).toString('hex'),
    '00000000' + '00000001' + '0000000f' + Buffer.from('base:allocation').toString('hex'),
  );
  assert.equal(
    codeOf(() => encodeGoData('x'.repeat(4097), [])),
    'FERRY_NBD_TOO_LARGE',
  );
});

test('option reply header: magic, echoed option and a capped length are checked', () => {
  const head = (magic: bigint, option: number, type: number, length: number) =>
    Buffer.concat([be64(magic), be32(option, type, length)]);
  assert.deepEqual(parseOptionReplyHeader(head(NBD_REP_MAGIC, 7, 1, 0), 7), {
    option: 7,
    type: 1,
    length: 0,
  });
  assert.equal(
    codeOf(() => parseOptionReplyHeader(head(0x1234n, 7, 1, 0), 7)),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  assert.equal(
    codeOf(() => parseOptionReplyHeader(head(NBD_REP_MAGIC, 8, 1, 0), 7)),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  assert.equal(
    codeOf(() => parseOptionReplyHeader(head(NBD_REP_MAGIC, 7, 3, 0xffffffff), 7)),
    'FERRY_NBD_TOO_LARGE',
  );
  assert.equal(
    codeOf(() => parseOptionReplyHeader(head(NBD_REP_MAGIC, 7, 3, 65537), 7)),
    'FERRY_NBD_TOO_LARGE',
  );
});

test('NBD_REP_INFO: export size and flags, block sizes validated, unknown types passed over', () => {
  assert.deepEqual(parseInfo(Buffer.concat([be16(0), be64(1 << 30), be16(3)])), {
    kind: 'export',
    size: 1 << 30,
    flags: 3,
  });
  assert.equal(
    codeOf(() => parseInfo(Buffer.concat([be16(0), be64(1n << 60n)]))),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  assert.equal(
    codeOf(() => parseInfo(Buffer.concat([be16(0), be64(1n << 60n), be16(1)]))),
    'FERRY_NBD_TOO_LARGE',
  );
  const bs = (min: number, pref: number, max: number) =>
    parseInfo(Buffer.concat([be16(3), be32(min, pref, max)]));
  assert.deepEqual(bs(512, 4096, 33554432), { kind: 'block-size', min: 512, preferred: 4096, max: 33554432 });
  assert.deepEqual(bs(1, 4096, 0xffffffff), { kind: 'block-size', min: 1, preferred: 4096, max: 0xffffffff });
  for (const [min, pref, max] of [
    [0, 4096, 4096],
    [3, 4096, 4096],
    [1 << 17, 1 << 17, 1 << 17],
    [512, 256, 4096],
    [512, 4096, 256],
    [512, 4096, 1000],
  ] as const) {
    assert.equal(
      codeOf(() => bs(min, pref, max)),
      'FERRY_NBD_PROTOCOL_ERROR',
      `${min}/${pref}/${max}`,
    );
  }
  assert.deepEqual(parseInfo(Buffer.concat([be16(2), Buffer.from('desc')])), { kind: 'other', infoType: 2 });
  assert.equal(
    codeOf(() => parseInfo(Buffer.alloc(1))),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  assert.deepEqual(parseMetaContext(Buffer.concat([be32(5), Buffer.from('base:allocation')])), {
    id: 5,
    name: 'base:allocation',
  });
  assert.equal(
    codeOf(() => parseMetaContext(be32(5))),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  assert.equal(
    codeOf(() => parseMetaContext(Buffer.concat([be32(1), Buffer.alloc(4097, 0x61)]))),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
});

test('reply headers: simple and structured by magic; a wrong magic is a protocol error', () => {
  assert.deepEqual(parseReplyHeader(Buffer.concat([be32(0x67446698, 5), be64(9)])), {
    kind: 'simple',
    errno: 5,
    cookie: 9,
  });
  assert.deepEqual(parseReplyHeader(Buffer.concat([be32(0x668e33ef), be16(1), be16(2), be64(3), be32(12)])), {
    kind: 'structured',
    flags: 1,
    type: 2,
    cookie: 3,
    length: 12,
  });
  assert.equal(
    codeOf(() => parseReplyHeader(Buffer.concat([be32(0xdeadbeef, 0), be64(1)]))),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  // A cookie above 2^53 cannot be one Ferry sent.
  assert.equal(
    (parseReplyHeader(Buffer.concat([be32(0x67446698, 0), be64(1n << 60n)])) as { cookie: number }).cookie,
    -1,
  );
});

test('chunk lengths are checked against type and request before any payload is read', () => {
  const req = { offset: 4096, length: 8192 };
  const ok = (type: number, length: number, isRead: boolean) =>
    codeOf(() => checkChunkLength(type, length, req, isRead));
  assert.equal(ok(NBD_REPLY_TYPE_NONE, 0, true), 'no error');
  assert.equal(ok(NBD_REPLY_TYPE_NONE, 4, true), 'FERRY_NBD_PROTOCOL_ERROR');
  assert.equal(ok(NBD_REPLY_TYPE_OFFSET_DATA, 8 + 8192, true), 'no error');
  assert.equal(ok(NBD_REPLY_TYPE_OFFSET_DATA, 8 + 8193, true), 'FERRY_NBD_TOO_LARGE');
  assert.equal(ok(NBD_REPLY_TYPE_OFFSET_DATA, 0xffffffff, true), 'FERRY_NBD_TOO_LARGE');
  assert.equal(ok(NBD_REPLY_TYPE_OFFSET_DATA, 8, true), 'FERRY_NBD_PROTOCOL_ERROR');
  assert.equal(ok(NBD_REPLY_TYPE_OFFSET_DATA, 100, false), 'FERRY_NBD_PROTOCOL_ERROR');
  assert.equal(ok(NBD_REPLY_TYPE_OFFSET_HOLE, 12, true), 'no error');
  assert.equal(ok(NBD_REPLY_TYPE_OFFSET_HOLE, 16, true), 'FERRY_NBD_PROTOCOL_ERROR');
  assert.equal(ok(NBD_REPLY_TYPE_BLOCK_STATUS, 12, false), 'no error');
  assert.equal(ok(NBD_REPLY_TYPE_BLOCK_STATUS, 12, true), 'FERRY_NBD_PROTOCOL_ERROR');
  assert.equal(ok(NBD_REPLY_TYPE_BLOCK_STATUS, 13, false), 'FERRY_NBD_PROTOCOL_ERROR');
  assert.equal(ok(NBD_REPLY_TYPE_BLOCK_STATUS, 4 + 8 * MAX_BLOCK_STATUS_EXTENTS, false), 'no error');
  assert.equal(
    ok(NBD_REPLY_TYPE_BLOCK_STATUS, 4 + 8 * (MAX_BLOCK_STATUS_EXTENTS + 1), false),
    'FERRY_NBD_TOO_LARGE',
  );
  assert.equal(ok(NBD_REPLY_TYPE_ERROR, 6, true), 'no error');
  assert.equal(ok(NBD_REPLY_TYPE_ERROR, 5, true), 'FERRY_NBD_PROTOCOL_ERROR');
  assert.equal(ok(NBD_REPLY_TYPE_ERROR, 6 + 4097, true), 'FERRY_NBD_TOO_LARGE');
  assert.equal(ok(NBD_REPLY_TYPE_ERROR_OFFSET, 6 + 4096 + 8, true), 'no error');
  assert.equal(ok(0x8000 + 77, 10, true), 'no error'); // unknown error type: read as an error
  assert.equal(ok(77, 10, true), 'FERRY_NBD_PROTOCOL_ERROR'); // unknown non-error type
});

test('data and hole chunks must lie inside their request', () => {
  const req = { offset: 4096, length: 8192 };
  assert.deepEqual(parseDataChunkOffset(be64(4096), 8 + 8192, req), { offset: 4096, length: 8192 });
  assert.deepEqual(parseDataChunkOffset(be64(8192), 8 + 4096, req), { offset: 8192, length: 4096 });
  assert.equal(
    codeOf(() => parseDataChunkOffset(be64(8192), 8 + 4097, req)),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  assert.equal(
    codeOf(() => parseDataChunkOffset(be64(0), 8 + 10, req)),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  assert.equal(
    codeOf(() => parseDataChunkOffset(be64(1n << 62n), 8 + 10, req)),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  assert.deepEqual(parseHoleChunk(Buffer.concat([be64(4096), be32(8192)]), req), {
    offset: 4096,
    length: 8192,
  });
  assert.equal(
    codeOf(() => parseHoleChunk(Buffer.concat([be64(4096), be32(8193)]), req)),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  assert.equal(
    codeOf(() => parseHoleChunk(Buffer.concat([be64(4096), be32(0)]), req)),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
});

test('read chunks must tile the request: gaps, overlaps and short coverage are refused', () => {
  const req = { offset: 100, length: 300 };
  const t = (...p: [number, number][]) =>
    codeOf(() =>
      checkTiled(
        p.map(([offset, length]) => ({ offset, length })),
        req,
      ),
    );
  assert.equal(t([300, 100], [100, 200]), 'no error');
  assert.equal(t([100, 100], [250, 150]), 'FERRY_NBD_PROTOCOL_ERROR');
  assert.equal(t([100, 200], [250, 150]), 'FERRY_NBD_PROTOCOL_ERROR');
  assert.equal(t([100, 200]), 'FERRY_NBD_PROTOCOL_ERROR');
  assert.equal(t(), 'FERRY_NBD_PROTOCOL_ERROR');
});

test('error chunks: errno, message and offset; inconsistent lengths are protocol errors', () => {
  const req = { offset: 0, length: 4096 };
  const msg = Buffer.from('disk on fire');
  assert.deepEqual(
    parseErrorChunk(NBD_REPLY_TYPE_ERROR, Buffer.concat([be32(5), be16(msg.length), msg]), req),
    {
      errno: 5,
      message: 'disk on fire',
    },
  );
  assert.deepEqual(
    parseErrorChunk(
      NBD_REPLY_TYPE_ERROR_OFFSET,
      Buffer.concat([be32(5), be16(msg.length), msg, be64(100)]),
      req,
    ),
    { errno: 5, message: 'disk on fire', offset: 100 },
  );
  const e = (type: number, payload: Buffer) => codeOf(() => parseErrorChunk(type, payload, req));
  assert.equal(e(NBD_REPLY_TYPE_ERROR, Buffer.concat([be32(5), be16(50), msg])), 'FERRY_NBD_PROTOCOL_ERROR');
  assert.equal(e(NBD_REPLY_TYPE_ERROR, Buffer.concat([be32(0), be16(0)])), 'FERRY_NBD_PROTOCOL_ERROR');
  assert.equal(
    e(NBD_REPLY_TYPE_ERROR_OFFSET, Buffer.concat([be32(5), be16(0), be64(4096)])),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  assert.equal(
    e(NBD_REPLY_TYPE_ERROR_OFFSET, Buffer.concat([be32(5), be16(0), be64(1)], 13)),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
});

test('block status: extents from the request offset, final one clamped, overruns and empty ones refused', () => {
  const req = { offset: 1000, length: 3000 };
  const payload = (...pairs: [number, number][]) =>
    Buffer.concat([be32(9), ...pairs.map(([l, f]) => be32(l, f))]);
  assert.deepEqual(parseBlockStatus(payload([1000, 3], [1000, 0]), req), {
    contextId: 9,
    extents: [
      { offset: 1000, length: 1000, flags: 3 },
      { offset: 2000, length: 1000, flags: 0 },
    ],
  });
  // The final extent may reach past the request; it is clamped.
  assert.deepEqual(parseBlockStatus(payload([1000, 0], [1 << 30, 1]), req).extents, [
    { offset: 1000, length: 1000, flags: 0 },
    { offset: 2000, length: 2000, flags: 1 },
  ]);
  const c = (...pairs: [number, number][]) => codeOf(() => parseBlockStatus(payload(...pairs), req));
  assert.equal(c([4000, 0], [10, 0]), 'FERRY_NBD_PROTOCOL_ERROR'); // a non-final extent crosses the end
  assert.equal(c([3000, 0], [10, 0]), 'FERRY_NBD_PROTOCOL_ERROR'); // more extents after the range is covered
  assert.equal(c([0, 0]), 'FERRY_NBD_PROTOCOL_ERROR'); // zero length: no progress
});
