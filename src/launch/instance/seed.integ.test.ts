/** NoCloud seeds: the user-data composition, and real ISOs read back with isoinfo. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readdir } from 'node:fs/promises';
import { tempDir } from '../../../test/helpers/qemu.js';
import { rejectsWith } from '../../../test/helpers/errors.js';
import { buildSeed, MAX_SEED_PART_BYTES, userData } from './seed.js';

const run = promisify(execFile);
const isoFile = async (iso: string, name: string) =>
  (await run('isoinfo', ['-R', '-i', iso, '-x', `/${name}`], { encoding: 'utf8' })).stdout;

test('user data alone, a script alone (with its interpreter line), or both as MIME multipart', () => {
  const cfg = Buffer.from('#cloud-config\nruncmd: [echo hi]\n');
  assert.deepEqual(userData({ instanceId: 'i-1', hostname: 'h', userData: cfg }), cfg);
  assert.equal(
    userData({
      instanceId: 'i-1',
      hostname: 'h',
      configureScript: { type: 'SHELL_SCRIPT', body: Buffer.from('echo x\n') },
    }).toString(),
    '#!/bin/sh\necho x\n',
  );
  assert.equal(
    userData({
      instanceId: 'i-1',
      hostname: 'h',
      configureScript: { type: 'SHELL_SCRIPT', body: Buffer.from('#!/bin/bash\nx\n') },
    }).toString(),
    '#!/bin/bash\nx\n',
  );
  assert.match(
    userData({
      instanceId: 'i-1',
      hostname: 'h',
      configureScript: { type: 'POWERSHELL_SCRIPT', body: Buffer.from('Write-Host x') },
    }).toString(),
    /^#ps1_sysnative\nWrite-Host x$/,
  );
  const both = userData({
    instanceId: 'i-1',
    hostname: 'h',
    userData: cfg,
    configureScript: { type: 'SHELL_SCRIPT', body: Buffer.from('echo configured\n') },
  }).toString();
  const boundary = /boundary="([^"]+)"/.exec(both)?.[1];
  assert.ok(boundary);
  const parts = both.split(`--${boundary}`).slice(1, -1);
  assert.equal(parts.length, 2);
  assert.match(parts[0]!, /Content-Type: text\/cloud-config[\s\S]*runcmd: \[echo hi\]/);
  assert.match(parts[1]!, /Content-Type: text\/x-shellscript[\s\S]*#!\/bin\/sh\necho configured/);
  assert.ok(both.trimEnd().endsWith(`--${boundary}--`));
});

test('a seed ISO labelled cidata with user-data and meta-data; nothing else left in the directory', async () => {
  const dir = await tempDir('ferry-seed-');
  const iso = await buildSeed(dir, {
    instanceId: 'i-0123456789abcdef0',
    hostname: 'Shop Web_01',
    userData: Buffer.from('#cloud-config\nhostname: web\n'),
  });
  const info = (await run('isoinfo', ['-d', '-i', iso], { encoding: 'utf8' })).stdout;
  assert.match(info, /Volume id: cidata/);
  assert.equal(await isoFile(iso, 'user-data'), '#cloud-config\nhostname: web\n');
  assert.equal(
    await isoFile(iso, 'meta-data'),
    'instance-id: i-0123456789abcdef0\nlocal-hostname: shop-web-01\n',
  );
  assert.deepEqual(await readdir(dir), ['seed.iso']);
});

test('oversized parts and a missing genisoimage are refused with codes', async () => {
  const dir = await tempDir('ferry-seed-');
  await rejectsWith(
    buildSeed(dir, { instanceId: 'i-1', hostname: 'h', userData: Buffer.alloc(MAX_SEED_PART_BYTES + 1) }),
    'FERRY_INVALID_ARGUMENT',
  );
  await rejectsWith(
    buildSeed(
      dir,
      { instanceId: 'i-1', hostname: 'h', userData: Buffer.from('x') },
      '/nonexistent/genisoimage',
    ),
    'FERRY_LAUNCH_TOOL_MISSING',
  );
  assert.deepEqual(await readdir(dir), []);
});
