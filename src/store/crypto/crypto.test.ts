import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open, seal } from './aead.js';
import { chunkIdOf, deriveKeys, newKeyMaterial, sha256 } from './keys.js';
import { parseMasterKey, PassphraseMasterKey, RawMasterKey } from './master.js';
import { decodeSlot, encodeSlot, makeSlot, unlockSlots } from './slots.js';

const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };

test('AES-256-GCM: round trip; any flipped bit, other AAD or other key is FERRY_STORE_CORRUPT', () => {
  const key = randomBytes(32);
  const aad = Buffer.from('aad');
  const sealed = seal(key, Buffer.from('hello world'), aad);
  assert.equal(open(key, sealed, aad, 't').toString(), 'hello world');
  for (const bit of [0, 8 * 12 + 3, sealed.length * 8 - 1]) {
    const bad = Buffer.from(sealed);
    bad[bit >> 3]! ^= 1 << (bit & 7);
    assert.throws(() => open(key, bad, aad, 't'), { code: 'FERRY_STORE_CORRUPT' });
  }
  assert.throws(() => open(key, sealed, Buffer.from('other'), 't'), { code: 'FERRY_STORE_CORRUPT' });
  assert.throws(() => open(randomBytes(32), sealed, aad, 't'), { code: 'FERRY_STORE_CORRUPT' });
  assert.throws(() => open(key, sealed.subarray(0, 20), aad, 't'), { code: 'FERRY_STORE_CORRUPT' });
});

test('derived keys are distinct, and chunk ids depend on the repository key', () => {
  const k1 = deriveKeys(newKeyMaterial());
  const k2 = deriveKeys(newKeyMaterial());
  assert.notDeepEqual(k1.encKey, k1.idKey);
  assert.notDeepEqual(k1.idKey, k1.macKey);
  const d = sha256(Buffer.from('block'));
  assert.notDeepEqual(chunkIdOf(k1.idKey, d), chunkIdOf(k2.idKey, d));
  assert.deepEqual(chunkIdOf(k1.idKey, d), chunkIdOf(k1.idKey, d));
});

test('master keys parse from hex, base64 and raw bytes; garbage is FERRY_INVALID_ARGUMENT', () => {
  const raw = randomBytes(32);
  for (const form of [raw, raw.toString('hex') + '\n', raw.toString('base64')]) {
    assert.ok(parseMasterKey(form, 'k') instanceof RawMasterKey);
  }
  for (const bad of ['', 'abc', 'zz'.repeat(32), Buffer.alloc(31)]) {
    assert.throws(() => parseMasterKey(bad, 'k'), { code: 'FERRY_INVALID_ARGUMENT' });
  }
});

test('key slots: the right key opens its slot, a wrong key or another repository does not', async () => {
  const material = newKeyMaterial();
  const { master } = RawMasterKey.generate();
  const pass = new PassphraseMasterKey('correct horse', FAST_SCRYPT);
  const s1 = await makeSlot(master, material, 'repo-a');
  const s2 = await makeSlot(pass, material, 'repo-a', 'ops');
  const slots = [decodeSlot(encodeSlot(s1), s1.id), decodeSlot(encodeSlot(s2), s2.id)];
  assert.deepEqual((await unlockSlots(slots, master, 'repo-a', 'r')).material, material);
  assert.deepEqual((await unlockSlots(slots, pass, 'repo-a', 'r')).material, material);
  assert.equal((await unlockSlots(slots, pass, 'repo-a', 'r')).slot.label, 'ops');
  await assert.rejects(unlockSlots(slots, RawMasterKey.generate().master, 'repo-a', 'r'), {
    code: 'FERRY_STORE_WRONG_KEY',
  });
  await assert.rejects(unlockSlots(slots, new PassphraseMasterKey('wrong', FAST_SCRYPT), 'repo-a', 'r'), {
    code: 'FERRY_STORE_WRONG_KEY',
  });
  await assert.rejects(unlockSlots(slots, master, 'repo-b', 'r'), { code: 'FERRY_STORE_WRONG_KEY' });
});

test('key slots: malformed or hostile slots are refused with coded errors', async () => {
  const { master } = RawMasterKey.generate();
  const slot = await makeSlot(new PassphraseMasterKey('p', FAST_SCRYPT), newKeyMaterial(), 'r');
  assert.throws(() => decodeSlot(Buffer.from('{'), slot.id), { code: 'FERRY_STORE_CORRUPT' });
  assert.throws(() => decodeSlot(encodeSlot(slot), 'ffffffffffffffff'), { code: 'FERRY_STORE_CORRUPT' });
  assert.throws(() => decodeSlot(Buffer.from(JSON.stringify({ ...slot, version: 9 })), slot.id), {
    code: 'FERRY_STORE_UNSUPPORTED',
  });
  const greedy = { ...slot, kdf: { ...slot.kdf!, N: 2 ** 30 } };
  await assert.rejects(new PassphraseMasterKey('p').unwrap(greedy, Buffer.alloc(0)), {
    code: 'FERRY_STORE_TOO_LARGE',
  });
  const odd = { ...slot, kdf: { ...slot.kdf!, N: 1000 } };
  await assert.rejects(new PassphraseMasterKey('p').unwrap(odd, Buffer.alloc(0)), {
    code: 'FERRY_STORE_CORRUPT',
  });
  assert.equal(await master.unwrap({ wrapped: 'AAAA' }, Buffer.alloc(0)), undefined);
});
