import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalBackend, MemoryBackend, listAll } from '../../src/store/index.js';
import { tempDir } from '../helpers/qemu.js';
import { backendContract, largeObjectContract } from './backend-contract.js';
import { s3Backend } from './s3-server.js';

backendContract('memory', async () => new MemoryBackend());
backendContract('local', async () => new LocalBackend(join(await tempDir('ferry-store-'), 'repo')));
backendContract('s3', () => s3Backend());
backendContract('s3 (bucket root)', () => s3Backend(''));

test('local: put leaves no temporary file behind and ignores stray ones in listings', async () => {
  const root = join(await tempDir('ferry-store-'), 'repo');
  const b = new LocalBackend(root);
  await b.put('images/ami-0123456789abcdef0', Buffer.from('x'));
  assert.deepEqual(await readdir(join(root, 'tmp')), []);
  await writeFile(join(root, 'tmp', 'dead.tmp'), 'partial');
  await mkdir(join(root, 'data', 'aa'), { recursive: true });
  await writeFile(join(root, 'data', 'aa', 'x.tmp'), 'partial');
  assert.deepEqual(
    (await listAll(b, '')).map((o) => o.key),
    ['images/ami-0123456789abcdef0'],
  );
  assert.equal(await b.cleanTemp(0), 1);
});

largeObjectContract('local', async () => new LocalBackend(join(await tempDir('ferry-store-'), 'repo')));
largeObjectContract('s3', () => s3Backend());
