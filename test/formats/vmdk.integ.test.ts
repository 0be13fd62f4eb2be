/**
 * VMDK against the oracle: images made by qemu-img / qemu-io in every subformat QEMU
 * writes (monolithicSparse with and without zeroed grains, streamOptimized, monolithicFlat,
 * twoGbMaxExtentSparse/Flat, split over several extents), delta disks with parentCID
 * chains, hand-made vmfs/vmfsThin descriptors and a hand-made VMware stream (grain
 * directory in the footer); then Ferry's own output checked by qemu-img compare/check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { deflateSync } from 'node:zlib';
import { assertCleanFailure, FERRY_BIN, ferry, pseudoRandom, sha256File, tempDir } from '../helpers/qemu.js';

const run = promisify(execFile);
const MiB = 1 << 20;

/** qemu-img / qemu-io inside `dir`: split and backing names are stored as given. */
async function qemu(dir: string, tool: string, ...args: string[]): Promise<string> {
  try {
    return (await run(tool, args, { cwd: dir, maxBuffer: 64 << 20 })).stdout;
  } catch (err) {
    throw new Error(`${tool} ${args.join(' ')}: ${(err as { stderr?: string }).stderr ?? String(err)}`);
  }
}

type Interval = [number, number];
function merge(list: Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const [s, e] of list.sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last && last[1] >= s) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** Stored and explicit-zero ranges agree with `qemu-img map` (sparse extents only). */
async function mapsAgree(dir: string, img: string): Promise<void> {
  const q = JSON.parse(await qemu(dir, 'qemu-img', 'map', '--output=json', img)) as Array<{
    start: number;
    length: number;
    present: boolean;
    zero: boolean;
    data: boolean;
  }>;
  const r = await ferry(['image', 'map', resolve(dir, img), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const f = JSON.parse(r.stdout) as Array<{ offset: number; length: number; kind: string }>;
  const stored = (k: string) => k === 'data' || k === 'compressed';
  assert.deepEqual(
    merge(f.filter((e) => stored(e.kind)).map((e) => [e.offset, e.offset + e.length])),
    merge(q.filter((e) => e.data).map((e) => [e.start, e.start + e.length])),
    `stored ranges of ${img}`,
  );
  assert.deepEqual(
    merge(f.filter((e) => e.kind === 'zero').map((e) => [e.offset, e.offset + e.length])),
    merge(q.filter((e) => e.present && e.zero && !e.data).map((e) => [e.start, e.start + e.length])),
    `zero ranges of ${img}`,
  );
}

/** `ferry image checksum` equals sha256 of `qemu-img convert -O raw`. */
async function checksumAgrees(dir: string, img: string, args: string[] = []): Promise<string> {
  const r = await ferry(['image', 'checksum', resolve(dir, img), ...args]);
  assert.equal(r.code, 0, r.stderr);
  const raw = join(dir, `oracle-${process.hrtime.bigint()}.raw`);
  await qemu(dir, 'qemu-img', 'convert', '-f', 'vmdk', '-O', 'raw', img, raw);
  try {
    const sum = r.stdout.split(/\s/)[0] as string;
    assert.equal(sum, await sha256File(raw), `checksum of ${img}`);
    return sum;
  } finally {
    await rm(raw, { force: true });
  }
}

interface Info {
  format: string;
  subformat: string;
  virtualSize: number;
  chain: Array<{ parent?: string; id?: string; files: string[]; details: Record<string, unknown> }>;
}
async function infoOf(path: string): Promise<Info> {
  const r = await ferry(['image', 'info', path, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Info;
}

/** 24 MiB + 3 sectors: random, zeros, text and a partial last grain. */
async function sourceDisk(dir: string): Promise<string> {
  const text = Buffer.from('grain table directory marker footer '.repeat(120000));
  const disk = Buffer.concat([
    pseudoRandom(3 * MiB, 11),
    Buffer.alloc(5 * MiB),
    text.subarray(0, 4 * MiB),
    Buffer.alloc(11 * MiB + 12345),
    pseudoRandom(MiB - 12345 + 1536, 12),
  ]);
  const path = join(dir, 'src.raw');
  await writeFile(path, disk);
  return path;
}

test('qemu-img subformats: checksum, map and info agree', async () => {
  const dir = await tempDir();
  const src = await sourceDisk(dir);
  const subformats = [
    'monolithicSparse',
    'streamOptimized',
    'monolithicFlat',
    'twoGbMaxExtentSparse',
    'twoGbMaxExtentFlat',
  ];
  for (const sub of subformats) {
    const img = `${sub}.vmdk`;
    await qemu(dir, 'qemu-img', 'convert', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${sub}`, src, img);
    assert.equal(await checksumAgrees(dir, img), await sha256File(src));
    // qemu-img map looks through flat extents into the holes of their files; Ferry maps
    // what the VMDK says (all data), so maps are compared for sparse extents only.
    if (!sub.endsWith('Flat')) await mapsAgree(dir, img);
    const info = await infoOf(join(dir, img));
    const q = JSON.parse(await qemu(dir, 'qemu-img', 'info', '--output=json', img)) as {
      'virtual-size': number;
      'format-specific': { data: { cid: number; 'create-type': string } };
    };
    assert.equal(info.format, 'vmdk');
    assert.equal(info.virtualSize, q['virtual-size']);
    assert.equal(info.subformat, q['format-specific'].data['create-type']);
    assert.equal(info.chain[0]?.id, q['format-specific'].data.cid.toString(16).padStart(8, '0'));
  }
});

test('zeroed grains (qemu-io write -z on zeroed_grain=on) map and read as zero', async () => {
  const dir = await tempDir();
  await qemu(dir, 'qemu-img', 'create', '-q', '-f', 'vmdk', '-o', 'zeroed_grain=on', 'z.vmdk', '16M');
  await qemu(
    dir,
    'qemu-io',
    '-f',
    'vmdk',
    '-c',
    'write -P 0x5a 0 4M',
    '-c',
    'write -z 1M 2M',
    '-c',
    'write -z 8M 1M',
    'z.vmdk',
  );
  await checksumAgrees(dir, 'z.vmdk');
  await mapsAgree(dir, 'z.vmdk');
  const r = await ferry(['image', 'map', join(dir, 'z.vmdk'), '--json']);
  const zero = (JSON.parse(r.stdout) as Array<{ kind: string; length: number }>).filter(
    (e) => e.kind === 'zero',
  );
  assert.equal(
    zero.reduce((s, e) => s + e.length, 0),
    3 * MiB,
  );
});

test('split over several 2 GiB extents (sparse)', async () => {
  const dir = await tempDir();
  const src = join(dir, 'big.raw');
  await writeFile(src, pseudoRandom(MiB, 3));
  await truncate(src, 2560 * MiB);
  await run('dd', ['if=/dev/urandom', `of=${src}`, 'bs=1M', 'count=1', 'seek=2300', 'conv=notrunc'], {});
  await qemu(
    dir,
    'qemu-img',
    'convert',
    '-f',
    'raw',
    '-O',
    'vmdk',
    '-o',
    'subformat=twoGbMaxExtentSparse',
    src,
    's.vmdk',
  );
  await rm(src);
  const info = await infoOf(join(dir, 's.vmdk'));
  assert.deepEqual(info.chain[0]?.files, ['s-s001.vmdk', 's-s002.vmdk']);
  await checksumAgrees(dir, 's.vmdk');
  await mapsAgree(dir, 's.vmdk');
});

test('delta disks: parentCID chain, and a wrong parentCID is refused', async () => {
  const dir = await tempDir();
  await qemu(dir, 'qemu-img', 'create', '-q', '-f', 'vmdk', 'base.vmdk', '8M');
  await qemu(dir, 'qemu-io', '-f', 'vmdk', '-c', 'write -P 0x11 0 4M', 'base.vmdk');
  await qemu(dir, 'qemu-img', 'create', '-q', '-f', 'vmdk', '-b', 'base.vmdk', '-F', 'vmdk', 'child.vmdk');
  await qemu(
    dir,
    'qemu-io',
    '-f',
    'vmdk',
    '-c',
    'write -P 0x22 1M 1M',
    '-c',
    'write -P 0x33 6M 64k',
    'child.vmdk',
  );
  await qemu(
    dir,
    'qemu-img',
    'create',
    '-q',
    '-f',
    'vmdk',
    '-b',
    'child.vmdk',
    '-F',
    'vmdk',
    'grandchild.vmdk',
  );
  await qemu(dir, 'qemu-io', '-f', 'vmdk', '-c', 'write -P 0x44 3M 128k', 'grandchild.vmdk');
  await checksumAgrees(dir, 'grandchild.vmdk');
  const info = await infoOf(join(dir, 'grandchild.vmdk'));
  assert.equal(info.chain.length, 3);
  assert.equal(info.chain[0]?.parent, 'child.vmdk');
  assert.equal(info.chain[1]?.parent, 'base.vmdk');
  assert.equal(info.chain[0]?.details.parentCid, info.chain[1]?.id);
  const nob = await ferry(['image', 'info', join(dir, 'grandchild.vmdk'), '--no-backing', '--json']);
  assert.equal(JSON.parse(nob.stdout).chain.length, 1);

  // Rewrite the child's parentCID in place: the engine must refuse the chain.
  const child = join(dir, 'child.vmdk');
  const bytes = await readFile(child);
  // QEMU writes the CID with %x (no zero padding): change its last digit, keep its length.
  const at = bytes.indexOf('parentCID=') + 'parentCID='.length;
  const end = bytes.indexOf('\n', at);
  const cid = bytes.toString('latin1', at, end);
  bytes.write(cid.slice(0, -1) + (cid.endsWith('0') ? '1' : '0'), at, 'latin1');
  await writeFile(child, bytes);
  assertCleanFailure(
    await ferry(['image', 'checksum', join(dir, 'grandchild.vmdk')]),
    'FERRY_CHAIN_MISMATCH',
  );
});

test('hand-made vmfs and vmfsThin descriptors over a flat file', async () => {
  const dir = await tempDir();
  const flat = pseudoRandom(6 * MiB, 21);
  await writeFile(join(dir, 'disk-flat.vmdk'), flat);
  for (const type of ['vmfs', 'vmfsThin']) {
    const desc = [
      '# Disk DescriptorFile',
      'version=1',
      'encoding="UTF-8"',
      'CID=fffffffe',
      'parentCID=ffffffff',
      `createType="${type}"`,
      '',
      '# Extent description',
      `RW ${(6 * MiB) / 512} VMFS "disk-flat.vmdk"`,
      '',
      'ddb.adapterType = "lsilogic"',
      'ddb.thinProvisioned = "1"',
      '',
    ].join('\r\n');
    await writeFile(join(dir, `${type}.vmdk`), desc);
    const r = await ferry(['image', 'checksum', join(dir, `${type}.vmdk`)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.split(/\s/)[0], await sha256File(join(dir, 'disk-flat.vmdk')));
    const info = await infoOf(join(dir, `${type}.vmdk`));
    assert.equal(info.subformat, type);
    assert.deepEqual(info.chain[0]?.files, ['disk-flat.vmdk']);
  }
  // QEMU knows createType "vmfs" (not vmfsThin): it must agree there.
  await checksumAgrees(dir, 'vmfs.vmdk');
});

/** A VMware-layout stream made from pieces: header with GD_AT_END, footer holds the GD. */
function vmwareStream(data: Buffer): Buffer {
  const G = 65536;
  const sectors = data.length / 512;
  const header = (gd: bigint) => {
    const h = Buffer.alloc(512);
    h.write('KDMV', 0, 'latin1');
    h.writeUInt32LE(3, 4);
    h.writeUInt32LE(0x30001, 8);
    h.writeBigUInt64LE(BigInt(sectors), 12);
    h.writeBigUInt64LE(128n, 20);
    h.writeBigUInt64LE(1n, 28);
    h.writeBigUInt64LE(1n, 36);
    h.writeUInt32LE(512, 44);
    h.writeBigUInt64LE(gd, 56);
    h.writeBigUInt64LE(128n, 64);
    Buffer.from([0x0a, 0x20, 0x0d, 0x0a]).copy(h, 73);
    h.writeUInt16LE(1, 77);
    return h;
  };
  const marker = (val: number, type: number) => {
    const m = Buffer.alloc(512);
    m.writeBigUInt64LE(BigInt(val), 0);
    m.writeUInt32LE(type, 12);
    return m;
  };
  const desc = Buffer.alloc(512);
  desc.write(
    `# Disk DescriptorFile\nversion=1\nCID=0000c0de\nparentCID=ffffffff\ncreateType="streamOptimized"\nRW ${sectors} SPARSE "x.vmdk"\n`,
  );
  const parts = [header(0xffffffffffffffffn), desc, Buffer.alloc(126 * 512)];
  let pos = 128 * 512;
  const grains = data.length / G;
  const gdEntries = Math.ceil(grains / 512);
  const gd = Buffer.alloc(Math.ceil((gdEntries * 4) / 512) * 512);
  for (let t = 0; t < gdEntries; t++) {
    const gt = Buffer.alloc(2048);
    for (let g = t * 512; g < Math.min(grains, (t + 1) * 512); g++) {
      const grain = data.subarray(g * G, (g + 1) * G);
      if (grain.every((x) => x === 0)) continue;
      const z = deflateSync(grain);
      const rec = Buffer.alloc(Math.ceil((12 + z.length) / 512) * 512);
      rec.writeBigUInt64LE(BigInt(g * 128), 0);
      rec.writeUInt32LE(z.length, 8);
      z.copy(rec, 12);
      gt.writeUInt32LE(pos / 512, (g % 512) * 4);
      parts.push(rec);
      pos += rec.length;
    }
    parts.push(marker(4, 1), gt);
    gd.writeUInt32LE(pos / 512 + 1, t * 4);
    pos += 512 + gt.length;
  }
  parts.push(marker(gd.length / 512, 2), gd);
  const gdSector = pos / 512 + 1;
  parts.push(marker(1, 3), header(BigInt(gdSector)), Buffer.alloc(512));
  return Buffer.concat(parts);
}

test('VMware stream layout (grain directory in the footer): made from pieces and by Ferry', async () => {
  const dir = await tempDir();
  const data = Buffer.concat([pseudoRandom(MiB, 31), Buffer.alloc(33 * MiB), Buffer.from('x'.repeat(MiB))]);
  await writeFile(join(dir, 'vmw.vmdk'), vmwareStream(data));
  await writeFile(join(dir, 'data.raw'), data);
  assert.equal(await checksumAgrees(dir, 'vmw.vmdk'), await sha256File(join(dir, 'data.raw')));
  await mapsAgree(dir, 'vmw.vmdk');
  assert.equal((await infoOf(join(dir, 'vmw.vmdk'))).chain[0]?.id, '0000c0de');
});

test('Ferry writes streamOptimized (file and pipe) and monolithicSparse that qemu-img reads identically', async () => {
  const dir = await tempDir();
  const src = await sourceDisk(dir);
  const outputs: string[] = [];
  for (const sub of ['streamOptimized', 'monolithicSparse']) {
    const out = join(dir, `ferry-${sub}.vmdk`);
    const r = await ferry(['image', 'convert', src, out, '-O', 'vmdk', '--subformat', sub]);
    assert.equal(r.code, 0, r.stderr);
    outputs.push(out);
  }
  const piped = join(dir, 'ferry-piped.vmdk');
  await run('bash', [
    '-c',
    `set -o pipefail; "${process.execPath}" "${FERRY_BIN}" image convert "${src}" - -O vmdk | cat > "${piped}"`,
  ]);
  outputs.push(piped);
  // From a qcow2 too (another reader feeding the writer), with 1 MiB grains.
  await qemu(dir, 'qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', src, 'src.qcow2');
  const big = join(dir, 'ferry-1m.vmdk');
  const r = await ferry([
    'image',
    'convert',
    join(dir, 'src.qcow2'),
    big,
    '-O',
    'vmdk',
    '--cluster-size',
    '1048576',
  ]);
  assert.equal(r.code, 0, r.stderr);
  outputs.push(big);
  for (const out of outputs) {
    assert.match(await qemu(dir, 'qemu-img', 'compare', '-f', 'raw', '-F', 'vmdk', src, out), /identical/);
    assert.match(await qemu(dir, 'qemu-img', 'check', '-f', 'vmdk', out), /No errors/);
    assert.equal(await checksumAgrees(dir, out), await sha256File(src));
  }
  const q = JSON.parse(await qemu(dir, 'qemu-img', 'info', '--output=json', outputs[0] as string)) as {
    'format-specific': { data: { 'create-type': string; 'parent-cid': number } };
  };
  assert.equal(q['format-specific'].data['create-type'], 'streamOptimized');
  assert.equal(q['format-specific'].data['parent-cid'], 0xffffffff);
  // And back: Ferry's stream → raw equals the source.
  const back = join(dir, 'back.raw');
  assert.equal((await ferry(['image', 'convert', piped, back, '-O', 'raw'])).code, 0);
  assert.equal(await sha256File(back), await sha256File(src));
  // A stream cannot be monolithicSparse on a pipe.
  assertCleanFailure(
    await ferry(['image', 'convert', src, '-', '-O', 'vmdk', '--subformat', 'monolithicSparse']),
    'FERRY_OUTPUT_NOT_SEEKABLE',
  );
});

test('a 2 TiB monolithicSparse opens and maps with flat memory', async () => {
  const dir = await tempDir();
  await qemu(dir, 'qemu-img', 'create', '-q', '-f', 'vmdk', 'huge.vmdk', '2T');
  await qemu(dir, 'qemu-io', '-f', 'vmdk', '-c', 'write -P 7 0 1M', '-c', 'write -P 8 1T 64k', 'huge.vmdk');
  const { stdout, stderr } = await run('/usr/bin/time', [
    '-f',
    '%M',
    process.execPath,
    FERRY_BIN,
    'image',
    'map',
    join(dir, 'huge.vmdk'),
    '--json',
  ]);
  const extents = JSON.parse(stdout) as Array<{ offset: number; length: number; kind: string }>;
  assert.deepEqual(
    extents.filter((e) => e.kind === 'data').map((e) => [e.offset, e.length]),
    [
      [0, MiB],
      [2 ** 40, 65536],
    ],
  );
  const rssKiB = Number(stderr.trim().split('\n').pop());
  assert.ok(rssKiB < 200 * 1024, `RSS ${rssKiB} KiB`);
});
