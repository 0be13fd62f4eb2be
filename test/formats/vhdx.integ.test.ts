/**
 * VHDX against the oracle. qemu-img writes dynamic and fixed VHDX with several block sizes
 * and block states, and Ferry must read the same bytes and size; Ferry writes dynamic and
 * fixed VHDX and qemu-img must find them clean and identical. QEMU 7.2 cannot make (or
 * read) differencing VHDX, 4 KiB-sector VHDX or VHDX with a pending log, so those are
 * crafted here with the driver's test support, and their expected content is composed
 * from the oracle's view of the parts. A pending log is also checked against QEMU's own
 * replay (`qemu-img check -r all` on a copy).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ferry,
  oracleChecksum,
  pseudoRandom,
  qemuImg,
  qemuIo,
  sha256File,
  tempDir,
} from '../helpers/qemu.js';
import { setBatEntry } from '../../src/disk/formats/vhdx/build.js';
import {
  PAYLOAD_FULLY_PRESENT,
  PAYLOAD_NOT_PRESENT,
  PAYLOAD_PARTIALLY_PRESENT,
  PAYLOAD_UNMAPPED,
  PAYLOAD_ZERO,
} from '../../src/disk/formats/vhdx/layout.js';
import { buildLogEntry, buildTestImage, setLogGuid } from '../../src/disk/formats/vhdx/testing.js';

const MiB = 1 << 20;

/** A raw disk of `size` bytes: random, text and zero runs of 256 KiB, and a few empty MiBs. */
function mixed(size: number, seed: number): Buffer {
  const buf = Buffer.alloc(size);
  for (let off = 0, i = 0; off < size; off += 256 * 1024, i++) {
    const kind = (i * 5 + seed) % 7;
    const end = Math.min(size, off + 256 * 1024);
    if (kind === 0 || kind === 3) pseudoRandom(end - off, seed + i).copy(buf, off);
    else if (kind === 1) buf.fill(`run ${i} seed ${seed}\n`, off, end);
  }
  buf.fill(0, 4 * MiB, 9 * MiB); // whole empty blocks at every block size ≤ 4 MiB
  return buf;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface MapEntry {
  offset: number;
  length: number;
  kind: string;
  depth: number;
}

async function ferryMap(img: string, extra: string[] = []): Promise<MapEntry[]> {
  const r = await ferry(['image', 'map', img, '--json', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as MapEntry[];
}

async function ferryInfo(
  img: string,
): Promise<Record<string, unknown> & { chain: Record<string, unknown>[] }> {
  const r = await ferry(['image', 'info', img, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function ferrySum(img: string, extra: string[] = []): Promise<string> {
  const r = await ferry(['image', 'checksum', img, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split(/\s/)[0] as string;
}

/** Every non-zero byte of `raw` lies in a data extent; blocks with data are exactly the stored ones. */
function checkMap(map: MapEntry[], raw: Buffer, blockSize: number, unwritten: string, what: string): void {
  let pos = 0;
  for (const e of map) {
    assert.equal(e.offset, pos, what);
    pos += e.length;
    for (let b = e.offset; b < e.offset + e.length; b += blockSize) {
      const nonZero = raw.subarray(b, Math.min(b + blockSize, raw.length)).some((x) => x !== 0);
      if (e.kind !== 'data') assert.equal(nonZero, false, `${what}: ${e.kind} block at ${b} holds data`);
      else if (unwritten !== 'data') assert.equal(nonZero, true, `${what}: empty block at ${b} stored`);
      else assert.equal(e.kind, 'data');
    }
    if (e.kind !== 'data') assert.equal(e.kind, unwritten, `${what}: block at ${e.offset}`);
  }
  assert.equal(pos, raw.length, what);
}

test('qemu-img-made VHDX (dynamic/fixed, 1-256 MiB blocks, ZERO or NOT_PRESENT blocks) reads like the oracle', async () => {
  const dir = await tempDir();
  const raw = join(dir, 'src.raw');
  const content = mixed(24 * MiB + 64 * 1024, 3);
  await writeFile(raw, content);
  const variants: Array<[string, number, string]> = [
    ['subformat=dynamic,block_size=1M', MiB, 'zero'],
    ['subformat=dynamic,block_size=1M,block_state_zero=off', MiB, 'unallocated'],
    ['subformat=dynamic,block_size=32M', 32 * MiB, 'zero'],
    ['subformat=dynamic,block_size=256M,block_state_zero=off', 256 * MiB, 'unallocated'],
    // QEMU's fixed disks start with every block ZERO too (block_state_zero=on is its default).
    ['subformat=fixed,block_size=8M', 8 * MiB, 'zero'],
    ['subformat=fixed,block_size=1M,block_state_zero=off', MiB, 'data'],
  ];
  for (const [opts, blockSize, unwritten] of variants) {
    const img = join(dir, `q-${variants.findIndex((v) => v[0] === opts)}.vhdx`);
    await qemuImg('convert', '-f', 'raw', '-O', 'vhdx', '-o', opts, raw, img);
    assert.equal(await ferrySum(img), await oracleChecksum(img, 'vhdx', dir), opts);
    assert.equal(await ferrySum(img), sha(content), opts);
    const info = await ferryInfo(img);
    const qinfo = JSON.parse(await qemuImg('info', '--output=json', img)) as Record<string, number>;
    assert.equal(info.virtualSize, qinfo['virtual-size'], opts);
    assert.equal(info.clusterSize, blockSize, opts);
    assert.equal(info.subformat, opts.startsWith('subformat=fixed') ? 'fixed' : 'dynamic', opts);
    assert.equal(info.clusterSize, qinfo['cluster-size'], opts);
    checkMap(await ferryMap(img), content, blockSize, unwritten, opts);
  }

  // Guest writes through qemu-io: partial blocks, a write of zeros, a discard.
  const img = join(dir, 'io.vhdx');
  await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=2M', img, '20M');
  await qemuIo(
    img,
    'vhdx',
    'write -P 0x11 0 4k',
    'write -P 0x22 3M 1M',
    'write -z 8M 2M',
    'write -P 0x33 19M 1M',
  );
  assert.equal(await ferrySum(img), await oracleChecksum(img, 'vhdx', dir));
});

test('Ferry-written VHDX: qemu-img check is clean, compare identical, and both ways agree', async () => {
  const dir = await tempDir();
  const raw = join(dir, 'src.raw');
  const content = mixed(24 * MiB + 512 * 3, 11);
  await writeFile(raw, content);
  for (const args of [
    [],
    ['--cluster-size', '1M'],
    ['--subformat', 'fixed', '--cluster-size', '2M'],
    ['--cluster-size', '256M'],
  ]) {
    const out = join(dir, `f${args.join('')}.vhdx`);
    const r = await ferry(['image', 'convert', raw, out, '-O', 'vhdx', ...args]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(await qemuImg('check', '-f', 'vhdx', out), /No errors were found/, args.join(' '));
    assert.match(await qemuImg('compare', '-f', 'raw', '-F', 'vhdx', raw, out), /identical/, args.join(' '));
    const qinfo = JSON.parse(await qemuImg('info', '--output=json', out)) as Record<string, number>;
    assert.equal(qinfo['virtual-size'], content.length);
    assert.equal(await ferrySum(out), sha(content));
    // And back: Ferry VHDX → raw with Ferry, and QEMU's raw of it.
    const back = join(dir, `b${args.join('')}.raw`);
    assert.equal((await ferry(['image', 'convert', out, back, '-O', 'raw'])).code, 0);
    assert.equal(await sha256File(back), sha(content));
    assert.equal(await oracleChecksum(out, 'vhdx', dir), sha(content));
  }
  // An all-zero disk: no block is stored, the file stays small.
  const empty = join(dir, 'empty.raw');
  await writeFile(empty, Buffer.alloc(8 * MiB));
  const out = join(dir, 'empty.vhdx');
  assert.equal((await ferry(['image', 'convert', empty, out, '-O', 'vhdx'])).code, 0);
  assert.match(await qemuImg('compare', '-f', 'raw', '-F', 'vhdx', empty, out), /identical/);
  assert.deepEqual(
    (await ferryMap(out)).map((e) => e.kind),
    ['unallocated'],
  );
  // QEMU VHDX → Ferry VHDX (the common migration step), compared by QEMU.
  const q = join(dir, 'q.vhdx');
  await qemuImg('convert', '-f', 'raw', '-O', 'vhdx', raw, q);
  const f = join(dir, 'qf.vhdx');
  assert.equal((await ferry(['image', 'convert', q, f, '-O', 'vhdx'])).code, 0);
  assert.match(await qemuImg('compare', '-f', 'vhdx', '-F', 'vhdx', q, f), /identical/);
  // Refused options.
  const bad = await ferry([
    'image',
    'convert',
    raw,
    join(dir, 'x.vhdx'),
    '-O',
    'vhdx',
    '--cluster-size',
    '3M',
  ]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /FERRY_INVALID_ARGUMENT/);
});

test('a crafted differencing VHDX reads through its parent, with the identity check', async () => {
  const dir = await tempDir();
  const size = 12 * MiB;
  const baseRaw = join(dir, 'base.raw');
  const baseContent = mixed(size, 21);
  await writeFile(baseRaw, baseContent);
  const base = join(dir, 'base.vhdx');
  await qemuImg('convert', '-f', 'raw', '-O', 'vhdx', '-o', 'block_size=1M', baseRaw, base);
  const baseId = (await ferryInfo(base)).chain[0]?.id as string;
  assert.match(baseId, /^[0-9a-f-]{36}$/);

  const b0 = pseudoRandom(MiB, 100);
  const b1 = pseudoRandom(MiB, 101);
  const present = [0, 1, 2, 700, 701, 2047];
  const child = (linkage: string, path = '.\\base.vhdx') =>
    buildTestImage({
      virtualSize: size,
      blockSize: MiB,
      parentLocator: [
        ['parent_linkage', `{${linkage.toUpperCase()}}`],
        ['relative_path', path],
        ['absolute_win32_path', '\\\\?\\D:\\vms\\base.vhdx'],
      ],
      dataWriteGuid: 'c41d0000-0000-4000-8000-000000000001',
      blocks: new Map([
        [0, { state: PAYLOAD_FULLY_PRESENT, data: b0 }],
        [1, { state: PAYLOAD_PARTIALLY_PRESENT, data: b1, sectors: present }],
        [4, { state: PAYLOAD_ZERO }],
        [5, { state: PAYLOAD_NOT_PRESENT }],
        [6, { state: PAYLOAD_UNMAPPED }],
      ]),
    }).bytes;
  const img = join(dir, 'child.vhdx');
  await writeFile(img, child(baseId));

  const expected = Buffer.from(baseContent);
  b0.copy(expected, 0);
  for (const s of present) b1.copy(expected, MiB + s * 512, s * 512, s * 512 + 512);
  expected.fill(0, 4 * MiB, 5 * MiB);
  assert.equal(await ferrySum(img), sha(expected));
  const info = await ferryInfo(img);
  assert.equal(info.subformat, 'differencing');
  assert.deepEqual(
    info.chain.map((c) => [c.file, c.subformat, c.id]),
    [
      ['child.vhdx', 'differencing', 'c41d0000-0000-4000-8000-000000000001'],
      ['base.vhdx', 'dynamic', baseId],
    ],
  );
  const map = await ferryMap(img);
  assert.deepEqual(
    map.slice(0, 4).map((e) => [e.offset, e.kind, e.depth]),
    [
      [0, 'data', 0],
      [MiB + 3 * 512, 'data', 1],
      [MiB + 700 * 512, 'data', 0],
      [MiB + 702 * 512, 'data', 1],
    ],
  );
  assert.ok(map.some((e) => e.offset === 4 * MiB && e.kind === 'zero' && e.depth === 0));

  // Flattened by Ferry into a standalone VHDX, judged by QEMU against the expected bytes.
  const expRaw = join(dir, 'expected.raw');
  await writeFile(expRaw, expected);
  const flat = join(dir, 'flat.vhdx');
  assert.equal((await ferry(['image', 'convert', img, flat, '-O', 'vhdx'])).code, 0);
  assert.match(await qemuImg('compare', '-f', 'raw', '-F', 'vhdx', expRaw, flat), /identical/);

  // Without the parent, unallocated reads as zeros.
  const alone = Buffer.alloc(size);
  b0.copy(alone, 0);
  for (const s of present) b1.copy(alone, MiB + s * 512, s * 512, s * 512 + 512);
  assert.equal(await ferrySum(img, ['--no-backing']), sha(alone));

  // A parent whose DataWriteGuid differs is refused.
  const wrong = join(dir, 'wrong.vhdx');
  await writeFile(wrong, child('00000000-1111-2222-3333-444444444444'));
  const r = await ferry(['image', 'checksum', wrong]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /FERRY_CHAIN_MISMATCH/);
});

test('4 KiB logical sectors are read per the spec (QEMU 7.2 refuses such files)', async () => {
  const dir = await tempDir();
  const size = 16 * MiB;
  const b2 = pseudoRandom(2 * MiB, 7);
  const img = join(dir, '4k.vhdx');
  await writeFile(
    img,
    buildTestImage({
      virtualSize: size,
      blockSize: 2 * MiB,
      logicalSectorSize: 4096,
      blocks: new Map([
        [2, { state: PAYLOAD_FULLY_PRESENT, data: b2 }],
        [5, { state: PAYLOAD_ZERO }],
      ]),
    }).bytes,
  );
  const expected = Buffer.alloc(size);
  b2.copy(expected, 4 * MiB);
  assert.equal(await ferrySum(img), sha(expected));
  const info = await ferryInfo(img);
  assert.equal(info.virtualSize, size);
  assert.equal((info.chain[0]?.details as Record<string, number>).logicalSectorSize, 4096);
  await assert.rejects(qemuImg('info', img), /not supported/i);
});

test('a pending log is replayed in memory, exactly as QEMU replays it in place', async () => {
  const dir = await tempDir();
  const img = join(dir, 'q.vhdx');
  await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=8M', img, '64M');
  await qemuIo(img, 'vhdx', 'write -P 0xab 0 1M', 'write -P 0xcd 30M 64k');
  const bytes = await readFile(img);
  const batOffset = Number(bytes.readBigUInt64LE(192 * 1024 + 16 + 16)); // region entry 0 (QEMU: BAT)
  const logOffset = Number(bytes.readBigUInt64LE(64 * 1024 + 72));
  // A crash after block 2's data reached the end of the file, before its BAT update
  // (logged, with a zeroing of an unrelated metadata-free sector) was applied.
  const end = bytes.length;
  const grown = Buffer.concat([bytes, Buffer.alloc(8 * MiB, 0x5c)]);
  const batSector = Buffer.from(grown.subarray(batOffset, batOffset + 4096));
  setBatEntry(batSector, 2, PAYLOAD_FULLY_PRESENT, end);
  const guid = '5eed5eed-0000-4000-8000-000000000001';
  buildLogEntry({
    sequence: 7n,
    tail: 0,
    logGuid: guid,
    flushedFileOffset: end,
    lastFileOffset: end + 8 * MiB,
    descriptors: [{ kind: 'data', fileOffset: batOffset, data: batSector }],
  }).copy(grown, logOffset);
  setLogGuid(grown, guid);
  const logged = join(dir, 'logged.vhdx');
  await writeFile(logged, grown);

  const before = await sha256File(logged);
  const sum = await ferrySum(logged);
  const info = await ferryInfo(logged);
  assert.match((info.warnings as string[]).join(), /replayed in memory/);
  assert.equal(await sha256File(logged), before, 'Ferry never writes the image');
  // QEMU refuses to open it read-only; its repair replays the log for real.
  await assert.rejects(qemuImg('info', logged), /log that needs to be replayed/);
  const copy = join(dir, 'replayed.vhdx');
  await copyFile(logged, copy);
  await qemuImg('check', '-r', 'all', copy);
  assert.equal(sum, await oracleChecksum(copy, 'vhdx', dir));
  assert.notEqual(sum, await oracleChecksum(img, 'vhdx', dir));
});
