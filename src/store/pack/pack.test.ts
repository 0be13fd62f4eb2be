import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { BLOB_DATA, BLOB_TREE, openBlob, sealBlob } from '../chunk/blob.js';
import { decodeIndex, encodeIndex } from '../index/format.js';
import { buildPack, decodeHeader, ENTRY_BYTES, parseTrailer, TRAILER_BYTES } from './format.js';

const key = randomBytes(32);

function sample() {
  const blobs = [
    sealBlob(key, BLOB_DATA, randomBytes(32), Buffer.alloc(65536, 7)),
    sealBlob(key, BLOB_DATA, randomBytes(32), randomBytes(4096)),
    sealBlob(key, BLOB_TREE, randomBytes(32), randomBytes(32 * 16)),
  ];
  const pack = buildPack(key, blobs);
  return { blobs, pack, bytes: Buffer.concat(pack.parts) };
}

test('pack: round trip through trailer, header and blobs; the id is the SHA-256 of the bytes', () => {
  const { blobs, pack, bytes } = sample();
  assert.equal(bytes.length, pack.size);
  assert.equal(blobs[0]!.compression, 1, 'zeros compress');
  assert.equal(blobs[1]!.compression, 0, 'random data is stored raw');
  const where = parseTrailer(bytes.subarray(-TRAILER_BYTES), bytes.length, 'p');
  const entries = decodeHeader(
    key,
    bytes.subarray(where.offset, where.offset + where.length),
    where.offset,
    'p',
  );
  assert.deepEqual(
    entries.map((e) => e.id),
    blobs.map((b) => b.id),
  );
  for (const [i, e] of entries.entries()) {
    const raw = openBlob(key, e, bytes.subarray(e.offset, e.offset + e.length), 'b');
    assert.equal(raw.length, blobs[i]!.rawLength);
  }
});

test('pack: hostile trailers and headers are coded errors', () => {
  const { bytes } = sample();
  assert.throws(() => parseTrailer(Buffer.alloc(TRAILER_BYTES), bytes.length, 'p'), {
    code: 'FERRY_STORE_CORRUPT',
  });
  const t = Buffer.from(bytes.subarray(-TRAILER_BYTES));
  t.writeUInt32LE(0xffffffff, 0);
  assert.throws(() => parseTrailer(t, bytes.length, 'p'), { code: 'FERRY_STORE_CORRUPT' });
  assert.throws(() => parseTrailer(bytes.subarray(-TRAILER_BYTES), 2 ** 40, 'p'), {
    code: 'FERRY_STORE_TOO_LARGE',
  });
  assert.throws(() => parseTrailer(bytes.subarray(-TRAILER_BYTES), 20, 'p'), { code: 'FERRY_STORE_CORRUPT' });
  const where = parseTrailer(bytes.subarray(-TRAILER_BYTES), bytes.length, 'p');
  const header = bytes.subarray(where.offset, where.offset + where.length);
  assert.throws(() => decodeHeader(key, header, where.offset + 1, 'p'), { code: 'FERRY_STORE_CORRUPT' });
  assert.throws(() => decodeHeader(randomBytes(32), header, where.offset, 'p'), {
    code: 'FERRY_STORE_CORRUPT',
  });
});

test('blob: a lying index entry (type, compression, length, id) fails authentication', () => {
  const id = randomBytes(32);
  const blob = sealBlob(key, BLOB_DATA, id, Buffer.alloc(8192, 1));
  assert.deepEqual(openBlob(key, blob, blob.bytes, 'b'), Buffer.alloc(8192, 1));
  for (const lie of [
    { type: BLOB_TREE },
    { compression: 0 },
    { rawLength: 8191 },
    { id: randomBytes(32) },
  ] as const) {
    assert.throws(() => openBlob(key, { ...blob, ...lie }, blob.bytes, 'b'), { code: 'FERRY_STORE_CORRUPT' });
  }
  assert.throws(() => openBlob(key, { ...blob, type: 7 as 0 }, blob.bytes, 'b'), {
    code: 'FERRY_STORE_CORRUPT',
  });
  assert.throws(() => openBlob(key, { ...blob, rawLength: 2 ** 30 }, blob.bytes, 'b'), {
    code: 'FERRY_STORE_CORRUPT',
  });
});

test('index files: round trip; absurd counts and trailing bytes are refused', () => {
  const { pack } = sample();
  const body = encodeIndex([{ packId: pack.id, entries: pack.entries }]);
  assert.deepEqual(decodeIndex(body, 'i')[0]!.entries, pack.entries);
  const huge = Buffer.from(body);
  huge.writeUInt32LE(0x7fffffff, 8);
  assert.throws(() => decodeIndex(huge, 'i'), { code: 'FERRY_STORE_CORRUPT' });
  assert.throws(() => decodeIndex(Buffer.concat([body, Buffer.alloc(1)]), 'i'), {
    code: 'FERRY_STORE_CORRUPT',
  });
  assert.throws(() => decodeIndex(body.subarray(0, body.length - ENTRY_BYTES), 'i'), {
    code: 'FERRY_STORE_CORRUPT',
  });
  assert.throws(() => decodeIndex(Buffer.from('nope'), 'i'), { code: 'FERRY_STORE_CORRUPT' });
});
