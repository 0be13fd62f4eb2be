/**
 * The image store through the CLI, with qemu-img as the oracle: images written from disks
 * of several formats export back to every writable format identical to their source.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertCleanFailure, ferry, qemuImg, sha256File, tempDir, type CliResult } from '../helpers/qemu.js';
import { mixedDisk } from './helpers.js';

interface Store {
  dir: string;
  repo: string;
  run(args: string[], env?: Record<string, string>): Promise<CliResult>;
}

async function newStore(extra: string[] = []): Promise<Store> {
  const dir = await tempDir('ferry-store-cli-');
  const repo = join(dir, 'repo');
  const key = join(dir, 'master.key');
  const r = await ferry(['store', 'init', '--repo', repo, '--new-key-file', key, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return {
    dir,
    repo,
    run: (args) => ferry([...args, '--repo', repo, '--key-file', key], { timeoutMs: 120_000 }),
  };
}

test('write disks of several formats, list, show, export to every format identical to the source', async () => {
  const s = await newStore(['--block-size', '16K']);
  const raw = join(s.dir, 'src.raw');
  await writeFile(raw, mixedDisk(6 * 1024 * 1024 + 512 * 3, 8));
  const qcow = join(s.dir, 'src.qcow2');
  const vmdk = join(s.dir, 'src.vmdk');
  await qemuImg('convert', '-f', 'raw', '-O', 'qcow2', raw, qcow);
  await qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, vmdk);

  const w = await s.run([
    'images',
    'write',
    raw,
    qcow,
    '--name',
    'web-1',
    '--job',
    'nightly',
    '--server',
    's-1',
    '--json',
  ]);
  assert.equal(w.code, 0, w.stderr);
  const image = JSON.parse(w.stdout);
  assert.match(image.id, /^ami-[0-9a-f]{17}$/);
  assert.equal(image.disks.length, 2);
  assert.equal(image.disks[0].checksum, image.disks[1].checksum, 'same content, same checksum');
  assert.equal(image.disks[1].stats.newChunks, 0, 'the second disk is fully deduplicated');

  const w2 = await s.run(['images', 'write', vmdk, '--name', 'web-1', '--job', 'nightly']);
  assert.equal(w2.code, 0, w2.stderr);
  const list = JSON.parse((await s.run(['images', 'list', '--json'])).stdout);
  assert.equal(list.length, 2);
  assert.equal(list[0].id, w2.stdout.trim(), 'newest first');
  const show = await s.run(['images', 'show', image.id]);
  assert.match(show.stdout, /disk 1: src\.qcow2/);

  const exported: string[] = [];
  for (const [fmt, opts] of [
    ['raw', []],
    ['qcow2', []],
    ['qcow2', ['-c']],
    ['vmdk', []],
    ['vhd', []],
    ['vhdx', []],
  ] as const) {
    const out = join(s.dir, `out-${fmt}-${opts.length}.img`);
    const e = await s.run(['images', 'export', image.id, out, '-O', fmt, '--disk', '1', ...opts]);
    if (e.code !== 0 && /cannot write/.test(e.stderr)) continue; // a driver without a writer yet
    assert.equal(e.code, 0, `${fmt}: ${e.stderr}`);
    assert.match(await qemuImg('compare', '-f', 'raw', raw, out), /identical/, fmt);
    exported.push(fmt);
  }
  assert.ok(exported.includes('raw') && exported.includes('qcow2'), `exported: ${exported.join(' ')}`);
  const std = await s.run(['images', 'export', image.id, '-', '-O', 'raw']);
  assert.equal(std.code, 0, std.stderr);
  const files = await readdir(s.dir);
  assert.ok(!files.some((f) => f.includes('.partial-')), 'no partial export left behind');

  const check = await s.run(['store', 'check', '--read-data']);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /no errors found/);
});

test('retention, delete and gc through the CLI; the kept image stays whole', async () => {
  const s = await newStore(['--block-size', '4K', '--fanout', '64']);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const f = join(s.dir, `d${i}.raw`);
    await writeFile(f, mixedDisk(2 * 1024 * 1024, 20 + i));
    const w = await s.run(['images', 'write', f, '--name', `run-${i}`, '--job', 'j1']);
    assert.equal(w.code, 0, w.stderr);
    ids.push(w.stdout.trim());
  }
  const del = await s.run(['images', 'delete', '--job', 'j1', '--keep', '1', '--json']);
  assert.equal(del.code, 0, del.stderr);
  assert.deepEqual(JSON.parse(del.stdout).deleted.sort(), ids.slice(0, 2).sort());
  const gc = await s.run(['store', 'gc', '--json']);
  assert.equal(gc.code, 0, gc.stderr);
  assert.ok(JSON.parse(gc.stdout).deletedPacks > 0);
  const out = join(s.dir, 'kept.raw');
  assert.equal((await s.run(['images', 'export', ids[2]!, out, '-O', 'raw'])).code, 0);
  assert.equal(await sha256File(out), await sha256File(join(s.dir, 'd2.raw')));
  assert.equal((await s.run(['store', 'check', '--read-data'])).code, 0);
  assertCleanFailure(await s.run(['images', 'show', ids[0]!]), 'FERRY_STORE_IMAGE_NOT_FOUND');
  assertCleanFailure(await s.run(['images', 'delete', ids[0]!]), 'FERRY_STORE_IMAGE_NOT_FOUND');
});

test('keys: add, rotate, remove; the old key stops working; wrong or missing keys are coded errors', async () => {
  const s = await newStore();
  const disk = join(s.dir, 'd.raw');
  await writeFile(disk, mixedDisk(1024 * 1024, 3));
  const id = (await s.run(['images', 'write', disk, '--name', 'k'])).stdout.trim();
  const pass = join(s.dir, 'pass.txt');
  await writeFile(pass, 'correct horse battery staple\n');
  const add = await s.run(['store', 'key', 'add', '--new-passphrase-file', pass, '--label', 'ops', '--json']);
  assert.equal(add.code, 0, add.stderr);
  const viaPass = await ferry(['images', 'list', '--repo', s.repo, '--passphrase-file', pass, '--json']);
  assert.equal(viaPass.code, 0, viaPass.stderr);
  assert.equal(JSON.parse(viaPass.stdout)[0].id, id);

  const newKey = join(s.dir, 'new.key');
  const rot = await s.run(['store', 'key', 'rotate', '--new-key-file', newKey, '--json']);
  assert.equal(rot.code, 0, rot.stderr);
  const old = await s.run(['images', 'list']);
  assertCleanFailure(old, 'FERRY_STORE_WRONG_KEY');
  assert.equal(old.code, 6);
  const env = { ...process.env, FERRY_STORE_KEY: (await readFile(newKey, 'utf8')).trim() };
  const viaEnv = await ferryEnv(['images', 'list', '--repo', s.repo], env);
  assert.equal(viaEnv.code, 0, viaEnv.stderr);
  const slots = JSON.parse(
    (await ferry(['store', 'key', 'list', '--repo', s.repo, '--key-file', newKey, '--json'])).stdout,
  );
  assert.equal(slots.length, 2);
  const passSlot = slots.find((x: { kind: string }) => x.kind === 'passphrase').id;
  assert.equal(
    (await ferry(['store', 'key', 'remove', passSlot, '--repo', s.repo, '--key-file', newKey])).code,
    0,
  );
  const last = await ferry([
    'store',
    'key',
    'remove',
    slots.find((x: { current: boolean }) => x.current).id,
    '--repo',
    s.repo,
    '--key-file',
    newKey,
  ]);
  assertCleanFailure(last, 'FERRY_INVALID_ARGUMENT');
  const none = await ferryEnv(['images', 'list', '--repo', s.repo], { PATH: process.env.PATH ?? '' });
  assertCleanFailure(none, 'FERRY_STORE_KEY_REQUIRED');
  assertCleanFailure(
    await ferry(['images', 'list', '--repo', join(s.dir, 'nope'), '--key-file', newKey]),
    'FERRY_STORE_NOT_FOUND',
  );
  assertCleanFailure(
    await ferry(['store', 'init', '--repo', s.repo, '--key-file', newKey]),
    'FERRY_STORE_EXISTS',
  );
});

test('a corrupted pack: export fails with a coded error and leaves no file; check fails', async () => {
  const s = await newStore();
  const disk = join(s.dir, 'd.raw');
  await writeFile(disk, mixedDisk(2 * 1024 * 1024, 5));
  const id = (await s.run(['images', 'write', disk, '--name', 'c'])).stdout.trim();
  const packDir = join(s.repo, 'data');
  // Corrupt the largest pack: a small one (tree nodes) may be shorter than the offset flipped.
  const packs: string[] = [];
  for (const sub of await readdir(packDir)) {
    for (const f of await readdir(join(packDir, sub))) packs.push(join(packDir, sub, f));
  }
  const sizes = await Promise.all(packs.map(async (p) => (await readFile(p)).length));
  const pack = packs[sizes.indexOf(Math.max(...sizes))]!;
  const bytes = await readFile(pack);
  assert.ok(bytes.length > 1000, 'the largest pack holds data blobs');
  bytes[1000]! ^= 0x40;
  await writeFile(pack, bytes);
  const out = join(s.dir, 'x.qcow2');
  const e = await s.run(['images', 'export', id, out, '-O', 'qcow2']);
  assertCleanFailure(e, 'FERRY_STORE_CORRUPT');
  assert.equal(e.code, 4);
  assert.ok(!(await readdir(s.dir)).some((f) => f.startsWith('x.qcow2')), 'no output left behind');
  assert.equal((await s.run(['store', 'check'])).code, 0, 'headers are intact: metadata check passes');
  const deep = await s.run(['store', 'check', '--read-data']);
  assertCleanFailure(deep, 'FERRY_STORE_CHECK_FAILED');
  assert.match(deep.stdout, /error: FERRY_STORE_CORRUPT/);
});

/** Runs the CLI with an explicit environment (ferry() inherits the test's). */
async function ferryEnv(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const saved = { ...process.env };
  for (const k of Object.keys(process.env)) if (k.startsWith('FERRY_STORE')) delete process.env[k];
  Object.assign(process.env, env);
  try {
    return await ferry(args);
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

test('a 2 TiB sparse disk: a few chunks stored, maps and exports in seconds, identical', async () => {
  const s = await newStore();
  const src = join(s.dir, 'big.qcow2');
  await qemuImg('create', '-q', '-f', 'qcow2', src, '2T');
  const { qemuIo } = await import('../helpers/qemu.js');
  await qemuIo(src, 'qcow2', 'write -P 0xab 1T 128k', 'write -P 0xcd 100G 64k');
  const w = await s.run(['images', 'write', src, '--name', 'big', '--json']);
  assert.equal(w.code, 0, w.stderr);
  const image = JSON.parse(w.stdout);
  assert.equal(image.disks[0].virtualSize, 2 * 1024 ** 4);
  assert.equal(image.disks[0].stats.newChunks, 2, 'the 128 KiB of 0xab dedup to one chunk, plus one of 0xcd');
  assert.ok(w.ms < 30_000);
  const out = join(s.dir, 'out.qcow2');
  const e = await s.run(['images', 'export', image.id, out, '-O', 'qcow2']);
  assert.equal(e.code, 0, e.stderr);
  assert.ok(e.ms < 30_000, `export took ${e.ms} ms`);
  assert.match(await qemuImg('compare', src, out), /identical/);
});

test('the CLI on an s3:// repository (s3rver on loopback): init, write, export, check, gc', async () => {
  const { CreateBucketCommand, S3Client } = await import('@aws-sdk/client-s3');
  const { s3Endpoint } = await import('./s3-server.js');
  const endpoint = await s3Endpoint();
  const creds = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: creds });
  await client.send(new CreateBucketCommand({ Bucket: 'ferry-cli' }));
  client.destroy();
  const dir = await tempDir('ferry-s3-cli-');
  const env = {
    ...process.env,
    FERRY_S3_ENDPOINT: endpoint,
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    FERRY_STORE_REPO: 's3://ferry-cli/images',
    FERRY_STORE_KEY_FILE: join(dir, 'k'),
  };
  const init = await ferryEnv(['store', 'init', '--new-key-file', join(dir, 'k')], env);
  assert.equal(init.code, 0, init.stderr);
  const src = join(dir, 'd.raw');
  await writeFile(src, mixedDisk(3 * 1024 * 1024, 12));
  const w = await ferryEnv(['images', 'write', src, '--name', 's3'], env);
  assert.equal(w.code, 0, w.stderr);
  assert.equal(w.stderr.includes('Warning'), false, 'no SDK warning on stderr');
  const out = join(dir, 'out.raw');
  const e = await ferryEnv(['images', 'export', w.stdout.trim(), out, '-O', 'raw'], env);
  assert.equal(e.code, 0, e.stderr);
  assert.equal(await sha256File(out), await sha256File(src));
  assert.equal((await ferryEnv(['store', 'check', '--read-data'], env)).code, 0);
  assert.equal((await ferryEnv(['images', 'delete', w.stdout.trim()], env)).code, 0);
  const gc = await ferryEnv(['store', 'gc', '--json'], env);
  assert.equal(gc.code, 0, gc.stderr);
  assert.ok(JSON.parse(gc.stdout).deletedPacks > 0);
});
