/**
 * VHD against the oracle: qemu-img writes every variant it can (dynamic, fixed, with and
 * without force_size) and Ferry must read the same bytes, size and allocation; Ferry writes
 * dynamic and fixed VHDs and qemu-img must see identical content and size. QEMU cannot
 * create differencing VHDs (and reads them as plain dynamic disks), so those are made from
 * qemu-img dynamic disks by patching the footer type, parent id, name and locators, and
 * their expected content is composed here from the oracle's view of base and child.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  assertCleanFailure,
  ferry,
  oracleChecksum,
  pseudoRandom,
  qemuImg,
  qemuIo,
  sha256File,
  tempDir,
} from '../helpers/qemu.js';
import { F, PLATFORM } from '../../src/disk/formats/vhd/layout.js';
import {
  bitmapOffset,
  patchFooter,
  setBitmap,
  toDifferencing,
  uniqueIdOf,
  utf16le,
  type LocatorInput,
} from '../../src/disk/formats/vhd/testkit.js';

const MiB = 1 << 20;

/** A raw disk with data, zeros and text mixed in 256 KiB runs, plus an odd tail. */
async function mixedRaw(path: string, size: number, seed: number): Promise<Buffer> {
  const buf = Buffer.alloc(size);
  for (let off = 0, i = 0; off < size; off += 256 * 1024, i++) {
    const kind = (i * 7 + seed) % 4;
    if (kind === 0) pseudoRandom(Math.min(256 * 1024, size - off), seed + i).copy(buf, off);
    else if (kind === 1) buf.fill(`block ${i} of seed ${seed}\n`, off, Math.min(size, off + 256 * 1024));
  }
  await writeFile(path, buf);
  return buf;
}

interface Range {
  start: number;
  end: number;
}

function merge(ranges: Range[]): Range[] {
  const out: Range[] = [];
  for (const r of ranges.sort((a, b) => a.start - b.start)) {
    const last = out[out.length - 1];
    if (last && last.end >= r.start) last.end = Math.max(last.end, r.end);
    else if (r.end > r.start) out.push({ ...r });
  }
  return out;
}

async function ferryStored(img: string, extra: string[] = []): Promise<Range[]> {
  const r = await ferry(['image', 'map', img, '--json', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  const extents = JSON.parse(r.stdout) as { offset: number; length: number; kind: string }[];
  return merge(
    extents
      .filter((e) => e.kind === 'data' || e.kind === 'compressed')
      .map((e) => ({ start: e.offset, end: e.offset + e.length })),
  );
}

async function qemuStored(img: string): Promise<Range[]> {
  const entries = JSON.parse(await qemuImg('map', '-f', 'vpc', '--output=json', img)) as {
    start: number;
    length: number;
    data: boolean;
  }[];
  return merge(entries.filter((e) => e.data).map((e) => ({ start: e.start, end: e.start + e.length })));
}

async function ferryInfo(img: string, extra: string[] = []): Promise<Record<string, unknown>> {
  const r = await ferry(['image', 'info', img, '--json', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

async function ferrySum(img: string, extra: string[] = []): Promise<string> {
  const r = await ferry(['image', 'checksum', img, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split(/\s/)[0] as string;
}

async function qemuVirtualSize(img: string): Promise<number> {
  return (JSON.parse(await qemuImg('info', '-f', 'vpc', '--output=json', img)) as { 'virtual-size': number })[
    'virtual-size'
  ];
}

test('qemu-img vpc variants: checksum, size, map and convert agree with the oracle', async () => {
  const dir = await tempDir();
  const raw = join(dir, 'src.raw');
  await mixedRaw(raw, 7 * MiB + 3 * 512, 3);
  const variants: [string, string[]][] = [
    ['dynamic', ['-o', 'subformat=dynamic']],
    ['fixed', ['-o', 'subformat=fixed']],
    ['dynamic-force', ['-o', 'force_size=on']],
    ['fixed-force', ['-o', 'subformat=fixed,force_size=on']],
  ];
  for (const [name, opts] of variants) {
    const img = join(dir, `${name}.vhd`);
    await qemuImg('convert', '-f', 'raw', '-O', 'vpc', ...opts, raw, img);
    const info = await ferryInfo(img);
    assert.equal(info.format, 'vhd', name);
    assert.equal(info.subformat, name.startsWith('fixed') ? 'fixed' : 'dynamic', name);
    assert.equal(info.virtualSize, await qemuVirtualSize(img), name);
    const details = (info.chain as { details: Record<string, unknown> }[])[0]?.details ?? {};
    assert.equal(details.sizeSource, name.endsWith('force') ? 'current_size' : 'chs', name);
    assert.ok(typeof details.currentSize === 'number' && typeof details.chsSize === 'number', name);
    const oracle = await oracleChecksum(img, 'vpc', dir);
    assert.equal(await ferrySum(img), oracle, name);
    if (!name.startsWith('fixed')) assert.deepEqual(await ferryStored(img), await qemuStored(img), name);
    const out = join(dir, `${name}.raw`);
    const conv = await ferry(['image', 'convert', img, out, '-O', 'raw']);
    assert.equal(conv.code, 0, conv.stderr);
    assert.equal(await sha256File(out), oracle, name);
  }
});

test('virtual size by creator application and geometry matches QEMU 7.2 exactly', async () => {
  const dir = await tempDir();
  const base = join(dir, 'base.vhd');
  await qemuImg('create', '-f', 'vpc', '-o', 'force_size=on', base, '6M');
  await qemuIo(base, 'vpc', 'write -P 0x33 0 6M');
  const img = await readFile(base);
  const cases: [string, [number, number, number]][] = [
    ['vpc ', [100, 4, 17]],
    ['qemu', [120, 4, 17]],
    ['vbox', [90, 4, 17]],
    ['win ', [100, 4, 17]],
    ['qem2', [100, 4, 17]],
    ['d2v ', [100, 4, 17]],
    ['CTXS', [100, 4, 17]],
    ['tap\0', [100, 4, 17]],
    ['vpc ', [65535, 16, 255]],
  ];
  for (const [i, [app, [c, h, s]]] of cases.entries()) {
    const file = join(dir, `creator-${i}.vhd`);
    const patched = patchFooter(img, (f) => {
      f.write(app, F.creatorApp, 4, 'latin1');
      f.writeUInt16BE(c, F.cylinders);
      f[F.heads] = h;
      f[F.sectorsPerTrack] = s;
    });
    await writeFile(file, patched);
    const info = await ferryInfo(file);
    assert.equal(info.virtualSize, await qemuVirtualSize(file), `${app} ${c}/${h}/${s}`);
    assert.equal(await ferrySum(file), await oracleChecksum(file, 'vpc', dir), `${app} ${c}/${h}/${s}`);
  }
});

test('qemu-io writes into a qemu-img dynamic disk: scattered data read and mapped like QEMU', async () => {
  const dir = await tempDir();
  const img = join(dir, 'io.vhd');
  await qemuImg('create', '-f', 'vpc', img, '24M');
  await qemuIo(
    img,
    'vpc',
    'write -P 0xab 0 64k',
    'write -P 0x11 5M 1536',
    'write -P 0x22 12M 3M',
    'write -z 13M 64k',
  );
  assert.equal(await ferrySum(img), await oracleChecksum(img, 'vpc', dir));
  assert.deepEqual(await ferryStored(img), await qemuStored(img));
  const info = await ferryInfo(img);
  assert.equal(info.virtualSize, await qemuVirtualSize(img));
  assert.equal(info.clusterSize, 2 * MiB);
});

test('Ferry writes dynamic and fixed VHDs that qemu-img reads as identical, with the same size', async () => {
  const dir = await tempDir();
  const raw = join(dir, 'src.raw');
  await mixedRaw(raw, 9 * MiB + 512, 5);
  for (const sub of ['dynamic', 'fixed']) {
    const out = join(dir, `${sub}.vhd`);
    const r = await ferry(['image', 'convert', raw, out, '-O', 'vhd', '--subformat', sub]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(await qemuImg('compare', '-f', 'raw', '-F', 'vpc', raw, out), /identical/);
    const info = await ferryInfo(out);
    const expectSize = sub === 'fixed' ? 10 * MiB : 9 * MiB + 512;
    assert.equal(info.virtualSize, expectSize);
    assert.equal(await qemuVirtualSize(out), expectSize);
    assert.equal(await ferrySum(out), await oracleChecksum(out, 'vpc', dir));
    if (sub === 'dynamic') assert.deepEqual(await ferryStored(out), await qemuStored(out));
    // And back: Ferry reads what it wrote.
    const back = join(dir, `${sub}.raw`);
    assert.equal((await ferry(['image', 'convert', out, back, '-O', 'raw'])).code, 0);
    assert.match(await qemuImg('compare', '-f', 'raw', '-F', 'raw', raw, back), /identical/);
  }
  // The default subformat is dynamic; fixed also streams to stdout.
  const def = join(dir, 'default.vhd');
  assert.equal((await ferry(['image', 'convert', raw, def, '-O', 'vhd'])).code, 0);
  assert.equal(((await ferryInfo(def)) as { subformat: string }).subformat, 'dynamic');
  const streamed = join(dir, 'streamed.vhd');
  await writeFile(streamed, await pipeBytes(raw));
  assert.match(await qemuImg('compare', '-f', 'raw', '-F', 'vpc', raw, streamed), /identical/);
  const dynPipe = await ferry(['image', 'convert', raw, '-', '-O', 'vhd']);
  assertCleanFailure(dynPipe, 'FERRY_OUTPUT_NOT_SEEKABLE');
});

/** Runs the fixed-VHD stdout conversion again, capturing raw bytes (the helper decodes UTF-8). */
async function pipeBytes(raw: string): Promise<Buffer> {
  const { spawn } = await import('node:child_process');
  const { FERRY_BIN } = await import('../helpers/qemu.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [
      FERRY_BIN,
      'image',
      'convert',
      raw,
      '-',
      '-O',
      'vhd',
      '--subformat',
      'fixed',
    ]);
    const parts: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => parts.push(d));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(parts)) : reject(new Error(`exit ${code}`)),
    );
  });
}

test('vhd → vhd and a 2040 GiB sparse dynamic disk open, map and convert quickly', async () => {
  const dir = await tempDir();
  const img = join(dir, 'q.vhd');
  await qemuImg('create', '-f', 'vpc', '-o', 'force_size=on', img, '2040G');
  await qemuIo(img, 'vpc', 'write -P 0x5a 1T 1M', 'write -P 0x6b 2039G 64k');
  const info = await ferry(['image', 'info', img, '--json']);
  assert.equal(info.code, 0, info.stderr);
  assert.equal(JSON.parse(info.stdout).virtualSize, 2040 * 2 ** 30);
  assert.ok(info.ms < 10_000, `info took ${info.ms} ms`);
  assert.deepEqual(await ferryStored(img), await qemuStored(img));
  const out = join(dir, 'copy.vhd');
  const conv = await ferry(['image', 'convert', img, out, '-O', 'vhd']);
  assert.equal(conv.code, 0, conv.stderr);
  assert.equal(await qemuVirtualSize(out), 2040 * 2 ** 30);
  assert.match(await qemuImg('compare', '-f', 'vpc', '-F', 'vpc', img, out), /identical/);
  // 2040 GiB is 1 MiB-aligned: a fixed VHD of exactly the limit (a sparse file here).
  const fixed = join(dir, 'fixed.vhd');
  const fixedConv = await ferry(['image', 'convert', img, fixed, '-O', 'vhd', '--subformat', 'fixed']);
  assert.equal(fixedConv.code, 0, fixedConv.stderr);
  assert.equal(await qemuVirtualSize(fixed), 2040 * 2 ** 30);
});

/** Composes the expected bytes of a differencing child over its parent, sector by sector. */
function compose(parent: Buffer, child: Buffer, present: (sector: number) => boolean): Buffer {
  const out = Buffer.from(parent);
  for (let s = 0; s < child.length / 512; s++) {
    if (present(s)) child.copy(out, s * 512, s * 512, s * 512 + 512);
  }
  return out;
}

async function makeChain(dir: string, locators: (parentName: string) => LocatorInput[]) {
  const base = join(dir, 'base.vhd');
  const baseRaw = join(dir, 'base.raw');
  const baseBytes = await mixedRaw(baseRaw, 8 * MiB, 11);
  await qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', 'force_size=on', baseRaw, base);
  const childPlain = join(dir, 'child-plain.vhd');
  await qemuImg('create', '-f', 'vpc', '-o', 'force_size=on', childPlain, '8M');
  await qemuIo(childPlain, 'vpc', 'write -P 0xc1 0 1M', 'write -P 0xc2 4M 2M');
  const childRaw = join(dir, 'child.raw');
  await qemuImg('convert', '-f', 'vpc', '-O', 'raw', childPlain, childRaw);
  const childBytes = await readFile(childRaw);
  let child = toDifferencing(await readFile(childPlain), {
    parentId: uniqueIdOf(await readFile(base)),
    parentName: 'base.vhd',
    locators: locators('base.vhd'),
  });
  // Block 0 (0-2 MiB): only the first 256 KiB are this layer's (bits 0-511); block 2 keeps all ones.
  const bits = Buffer.alloc(512);
  bits.fill(0xff, 0, 64);
  child = setBitmap(child, 0, bits);
  assert.ok(bitmapOffset(child, 2) > 0);
  const present = (s: number) => (s < 4096 ? s < 512 : s >= 8192 && s < 12288);
  return { base, child, expected: compose(baseBytes, childBytes, present) };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('differencing VHD: parent found by its relative locator, bits select the layer, ids checked', async () => {
  const dir = await tempDir();
  const { base, child, expected } = await makeChain(dir, (p) => [
    { platform: PLATFORM.W2ku, data: utf16le(`C:\\VMs\\${p}`) },
    { platform: PLATFORM.W2ru, data: utf16le(`.\\${p}`) },
  ]);
  const img = join(dir, 'child.vhd');
  await writeFile(img, child);
  assert.equal(await ferrySum(img), sha(expected));
  const info = await ferryInfo(img);
  const chain = info.chain as { file: string; subformat: string; parent?: string; id?: string }[];
  assert.deepEqual(
    chain.map((c) => [c.file, c.subformat]),
    [
      ['child.vhd', 'differencing'],
      ['base.vhd', 'dynamic'],
    ],
  );
  assert.equal(chain[0]?.parent, '.\\base.vhd');
  assert.equal(chain[1]?.id, uniqueIdOf(await readFile(base)));
  const map = await ferry(['image', 'map', img, '--json']);
  const extents = JSON.parse(map.stdout) as { offset: number; length: number; kind: string; depth: number }[];
  const top = extents.filter((e) => e.depth === 0).map((e) => [e.offset, e.length, e.kind]);
  assert.deepEqual(top, [
    [0, 256 * 1024, 'data'],
    [4 * MiB, 2 * MiB, 'data'],
  ]);
  // Converting flattens the chain.
  const out = join(dir, 'flat.vhd');
  assert.equal((await ferry(['image', 'convert', img, out, '-O', 'vhd'])).code, 0);
  assert.equal(await oracleChecksum(out, 'vpc', dir), sha(expected));
  // --no-backing: this layer alone; unallocated reads as zeros.
  const alone = Buffer.alloc(expected.length);
  expected.copy(alone, 0, 0, 256 * 1024);
  expected.copy(alone, 4 * MiB, 4 * MiB, 6 * MiB);
  assert.equal(await ferrySum(img, ['--no-backing']), sha(alone));
});

test('differencing VHD: wrong parent id, missing parent, name-only fallback, external parents', async () => {
  const dir = await tempDir();
  const { base, child, expected } = await makeChain(dir, (p) => [
    { platform: PLATFORM.W2ru, data: utf16le(p) },
  ]);
  // A parent whose unique id differs from the one the child recorded.
  const wrong = join(dir, 'wrong-id.vhd');
  await writeFile(
    wrong,
    toDifferencing(child, {
      parentId: '01234567-89ab-cdef-0123-456789abcdef',
      parentName: 'base.vhd',
      locators: [{ platform: PLATFORM.W2ru, data: utf16le('base.vhd') }],
    }),
  );
  assertCleanFailure(await ferry(['image', 'checksum', wrong]), 'FERRY_CHAIN_MISMATCH');
  // No locator: the parent name's base name in the child's directory.
  const nameOnly = join(dir, 'name-only.vhd');
  const baseId = uniqueIdOf(await readFile(base));
  await writeFile(
    nameOnly,
    toDifferencing(child, { parentId: baseId, parentName: 'D:\\old\\place\\base.vhd' }),
  );
  assert.equal(await ferrySum(nameOnly), sha(expected));
  // A missing parent.
  const missing = join(dir, 'missing.vhd');
  await writeFile(
    missing,
    toDifferencing(child, {
      parentId: baseId,
      locators: [{ platform: PLATFORM.W2ru, data: utf16le('gone.vhd') }],
    }),
  );
  assertCleanFailure(await ferry(['image', 'info', missing]), 'FERRY_REFERENCE_NOT_FOUND');
  // A parent outside the directory: refused, then allowed with --allow-external-references.
  const sub = join(dir, 'sub');
  await mkdir(sub);
  const outside = join(sub, 'child.vhd');
  await writeFile(
    outside,
    toDifferencing(child, {
      parentId: baseId,
      locators: [{ platform: PLATFORM.W2ru, data: utf16le('..\\base.vhd') }],
    }),
  );
  assertCleanFailure(await ferry(['image', 'checksum', outside]), 'FERRY_REFERENCE_REFUSED');
  assert.equal(await ferrySum(outside, ['--allow-external-references']), sha(expected));
  const absolute = join(sub, 'abs.vhd');
  await writeFile(
    absolute,
    toDifferencing(child, {
      parentId: baseId,
      locators: [{ platform: PLATFORM.MacX, data: Buffer.from(`file://localhost${base}`) }],
    }),
  );
  assertCleanFailure(await ferry(['image', 'checksum', absolute]), 'FERRY_REFERENCE_REFUSED');
  assert.equal(await ferrySum(absolute, ['--allow-external-references']), sha(expected));
});
