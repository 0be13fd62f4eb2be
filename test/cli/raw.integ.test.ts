import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  assertCleanFailure,
  ferry,
  oracleChecksum,
  pseudoRandom,
  qemuImg,
  sha256File,
  tempDir,
} from '../helpers/qemu.js';

test('raw: info, map, checksum and convert agree with qemu-img', async () => {
  const dir = await tempDir();
  const img = join(dir, 'disk.img');
  const data = Buffer.concat([pseudoRandom(1 << 20, 7), Buffer.alloc(3 << 20), pseudoRandom(12345, 9)]);
  await writeFile(img, data);

  const info = await ferry(['image', 'info', img, '--json']);
  assert.equal(info.code, 0, info.stderr);
  const parsed = JSON.parse(info.stdout);
  assert.equal(parsed.format, 'raw');
  // Like QEMU, an odd-sized raw file is a disk of whole sectors whose tail reads as zeros.
  assert.equal(parsed.virtualSize, Math.ceil(data.length / 512) * 512);

  const sum = await ferry(['image', 'checksum', img]);
  assert.equal(sum.code, 0, sum.stderr);
  assert.equal(sum.stdout.split(/\s/)[0], await oracleChecksum(img, 'raw', dir));

  const out = join(dir, 'copy.raw');
  const conv = await ferry(['image', 'convert', img, out, '-O', 'raw']);
  assert.equal(conv.code, 0, conv.stderr);
  assert.equal(await sha256File(out), await oracleChecksum(img, 'raw', dir));
  assert.match(await qemuImg('compare', '-f', 'raw', '-F', 'raw', img, out), /identical/);

  const cmp = await ferry(['image', 'compare', img, out]);
  assert.equal(cmp.code, 0, cmp.stderr);
  await writeFile(out, Buffer.from([1]), { flag: 'r+' });
  const cmp2 = await ferry(['image', 'compare', img, out]);
  assert.equal(cmp2.code, 1);
  assert.match(cmp2.stdout, /mismatch at offset 0/);
});

test('convert refuses to overwrite without --force and leaves no partial file on failure', async () => {
  const dir = await tempDir();
  const img = join(dir, 'a.img');
  await writeFile(img, pseudoRandom(65536));
  const out = join(dir, 'b.img');
  await writeFile(out, 'keep me');
  const r = await ferry(['image', 'convert', img, out, '-O', 'raw']);
  assertCleanFailure(r, 'FERRY_OUTPUT_EXISTS');
  const r2 = await ferry(['image', 'convert', img, out, '-O', 'raw', '--force']);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(await sha256File(out), await sha256File(img));
});

test('bad invocations end with a coded error and the documented exit code', async () => {
  const dir = await tempDir();
  assertCleanFailure(await ferry(['image', 'info', join(dir, 'missing.img')]), 'FERRY_FILE_NOT_FOUND');
  const r = await ferry(['image', 'info', dir]);
  assertCleanFailure(r, 'FERRY_FILE_NOT_FOUND');
  assert.equal(r.code, 7);
  const u = await ferry(['image', 'frobnicate']);
  assertCleanFailure(u, 'FERRY_INVALID_ARGUMENT');
  assert.equal(u.code, 2);
  assertCleanFailure(await ferry(['image', 'info']), 'FERRY_INVALID_ARGUMENT');
  assertCleanFailure(await ferry(['image', 'info', '--bogus', 'x']), 'FERRY_INVALID_ARGUMENT');
  const j = await ferry(['image', 'info', join(dir, 'nope'), '--json']);
  assert.equal(JSON.parse(j.stderr).error.code, 'FERRY_FILE_NOT_FOUND');
  await mkdir(join(dir, 'sub'));
  await symlink('/etc/hostname', join(dir, 'sub', 'link.img'));
  // A user-named symlink is the user's choice; it opens (the policy governs references *inside* images).
  assert.equal((await ferry(['image', 'info', join(dir, 'sub', 'link.img')])).code, 0);
});
