import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { crc32c, crc32cUpdate, crc32cWithZeroedField } from './crc32c.js';

/** Bit-at-a-time reference implementation. */
function reference(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

test('crc32c matches the standard check value and a bitwise reference', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(0)), 0);
  // RFC 3720 (iSCSI) B.4 test vectors.
  assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
  assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  for (const n of [1, 7, 8, 9, 63, 64, 65, 4095, 4096, 65536 + 3]) {
    const buf = randomBytes(n);
    assert.equal(crc32c(buf), reference(buf), `length ${n}`);
  }
});

test('crc32c over a sub-range and incrementally equals the one-shot value', () => {
  const buf = randomBytes(10_000);
  assert.equal(crc32c(buf, 13, 9_000), reference(buf.subarray(13, 9_000)));
  const c = crc32cUpdate(crc32cUpdate(0xffffffff, buf, 0, 5_001), buf, 5_001);
  assert.equal(~c >>> 0, crc32c(buf));
});

test('crc32cWithZeroedField treats the checksum field as zero without touching the buffer', () => {
  const buf = randomBytes(4096);
  const copy = Buffer.from(buf);
  copy.writeUInt32LE(0, 4);
  assert.equal(crc32cWithZeroedField(buf, 4), crc32c(copy));
  assert.notDeepEqual(buf.subarray(4, 8), Buffer.alloc(4));
});

test('crc32c runs at a useful speed (a 32 MiB log in well under a second)', () => {
  const buf = randomBytes(32 << 20);
  const t = performance.now();
  crc32c(buf);
  const ms = performance.now() - t;
  assert.ok(ms < 2000, `${ms} ms`);
});
