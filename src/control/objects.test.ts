import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { tempDir } from '../../test/helpers/qemu.js';
import { rejectsWith } from '../../test/helpers/errors.js';
import { LocalObjects, MAX_OBJECT_BYTES } from './objects.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

test('put, get, list, delete in the local bucket', async () => {
  const o = new LocalObjects(await tempDir('ferry-objects-'));
  assert.deepEqual(await o.put({ key: 'apps/shop/user-data.yaml', bodyBase64: b64('#cloud-config\n') }), {
    key: 'apps/shop/user-data.yaml',
    size: 14,
  });
  await o.put({ bucket: 'ferry-local', key: 'configure.sh', bodyBase64: b64('echo hi') });
  assert.equal((await o.get({ key: 'configure.sh' })).toString(), 'echo hi');
  assert.deepEqual(await o.list(), {
    objects: [
      { key: 'apps/shop/user-data.yaml', size: 14 },
      { key: 'configure.sh', size: 7 },
    ],
  });
  assert.deepEqual((await o.list({ prefix: 'apps/' })).objects.length, 1);
  await o.delete({ key: 'configure.sh' });
  await rejectsWith(o.get({ key: 'configure.sh' }), 'FERRY_NOT_FOUND');
});

test('keys never leave the bucket directory; other buckets and oversized bodies are refused', async () => {
  const root = await tempDir('ferry-objects-');
  const o = new LocalObjects(root);
  for (const key of ['../x', 'a/../../b', '/etc/passwd', 'a//b', '.', '..', 'a/./b', 'é', 'a b', '', 'x/']) {
    await rejectsWith(o.put({ key, bodyBase64: b64('x') }), 'FERRY_INVALID_ARGUMENT');
    await rejectsWith(o.get({ key }), 'FERRY_INVALID_ARGUMENT');
  }
  await rejectsWith(o.put({ bucket: 'my-bucket', key: 'k', bodyBase64: b64('x') }), 'FERRY_INVALID_ARGUMENT');
  await rejectsWith(
    o.put({ key: 'big', bodyBase64: Buffer.alloc(MAX_OBJECT_BYTES + 1).toString('base64') }),
    'FERRY_INVALID_ARGUMENT',
  );
  assert.deepEqual(await readdir(root), []);
});
