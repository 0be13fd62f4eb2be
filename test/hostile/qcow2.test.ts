/**
 * Hostile qcow2 images: valid images made by qemu-img, then patched (absurd sizes and
 * counts, offsets past the end, misaligned or pointing into metadata, tables pointing at
 * themselves, truncation everywhere, decompression bombs, unknown features, malicious
 * backing and data file names, backing loops). Each must end through the CLI with a coded
 * error, no stack trace, in well under 5 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync } from 'node:zlib';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertCleanFailure, ferry, qemuImg, qemuIo, tempDir, type CliResult } from '../helpers/qemu.js';
import { EXT, HDR } from '../../src/disk/formats/qcow2/layout.js';

let dir: string;
let plain: Buffer; // 8 MiB, 64 KiB clusters, data at 0 and 1 MiB
let packed: Buffer; // zlib-compressed clusters
let extended: Buffer; // extended L2

async function setup(): Promise<void> {
  if (plain) return;
  dir = await tempDir('ferry-hostile-qcow2-');
  const p = join(dir, 'plain.qcow2');
  await qemuImg('create', '-q', '-f', 'qcow2', p, '8M');
  await qemuIo(p, 'qcow2', 'write -P 0x41 0 64k', 'write -P 0x42 1M 64k');
  plain = await readFile(p);
  const c = join(dir, 'packed.qcow2');
  await qemuImg('convert', '-c', '-O', 'qcow2', p, c);
  packed = await readFile(c);
  const x = join(dir, 'extended.qcow2');
  await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', x, '8M');
  await qemuIo(x, 'qcow2', 'write -P 0x43 0 8k');
  extended = await readFile(x);
}

let n = 0;
async function run(img: Buffer, args: string[] = [], name = `h${n++}.qcow2`): Promise<CliResult> {
  const path = join(dir, name);
  await writeFile(path, img);
  return ferry(['image', 'checksum', path, ...args], { timeoutMs: 20_000 });
}

async function expectFailure(
  img: Buffer,
  code: string,
  args: string[] = [],
  name?: string,
): Promise<CliResult> {
  const r = await run(img, args, name);
  assertCleanFailure(r, code);
  assert.ok(r.ms < 5000, `took ${r.ms} ms`);
  return r;
}

function patch(img: Buffer, fn: (b: Buffer) => void): Buffer {
  const b = Buffer.from(img);
  fn(b);
  return b;
}

const l1Of = (b: Buffer) => Number(b.readBigUInt64BE(HDR.l1TableOffset));
const l2Of = (b: Buffer) => Number(b.readBigUInt64BE(l1Of(b)) & 0x00ff_ffff_ffff_fe00n);

test('hostile qcow2: header fields (version, cluster bits, header length, features, encryption)', async () => {
  await setup();
  assert.equal((await run(plain)).code, 0);
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(1, HDR.version)),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(4, HDR.version)),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(8, HDR.clusterBits)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(22, HDR.clusterBits)),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(0xffffffff, HDR.clusterBits)),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(0xfffffff8, HDR.headerLength)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(64, HDR.headerLength)),
    'FERRY_IMAGE_CORRUPT',
  );
  const unknown = await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE(1n << 33n, HDR.incompatibleFeatures)),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  assert.match(unknown.stderr, /33/);
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(1, HDR.cryptMethod)),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(2, HDR.cryptMethod)),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(0xdead, HDR.refcountOrder)),
    'FERRY_IMAGE_CORRUPT',
  );
  // An extension whose length runs past the first cluster.
  await expectFailure(
    patch(plain, (b) => {
      const at = b.readUInt32BE(HDR.headerLength);
      b.writeUInt32BE(0x1234abcd, at);
      b.writeUInt32BE(0xfffffff0, at + 4);
    }),
    'FERRY_IMAGE_CORRUPT',
  );
  // Not qcow2 when the user says it is.
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(0, HDR.magic)),
    'FERRY_IMAGE_FORMAT_MISMATCH',
    ['-f', 'qcow2'],
  );
});

test('hostile qcow2: sizes, counts and tables (huge, misaligned, past the end, on the header)', async () => {
  await setup();
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE(1n << 62n, HDR.size)),
    'FERRY_IMAGE_TOO_LARGE',
  );
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE(2n ** 64n - 1n, HDR.size)),
    'FERRY_IMAGE_TOO_LARGE',
  );
  // 64 TiB needs 512 L1 entries of 64 KiB clusters; the image has 1.
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE(1n << 46n, HDR.size)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(0xffffffff, HDR.l1Size)),
    'FERRY_IMAGE_TOO_LARGE',
  );
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(0x400000, HDR.l1Size)),
    'FERRY_IMAGE_TRUNCATED',
  );
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(0, HDR.l1Size)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE(0n, HDR.l1TableOffset)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE(12345n, HDR.l1TableOffset)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE(1n << 50n, HDR.l1TableOffset)),
    'FERRY_IMAGE_TRUNCATED',
  );
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(0x7fffffff, HDR.refcountTableClusters)),
    'FERRY_IMAGE_TOO_LARGE',
  );
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE(1n << 40n, HDR.refcountTableOffset)),
    'FERRY_IMAGE_TRUNCATED',
  );
  await expectFailure(
    patch(plain, (b) => b.writeUInt32BE(0xffffffff, HDR.nbSnapshots)),
    'FERRY_IMAGE_TOO_LARGE',
  );
  await expectFailure(
    patch(plain, (b) => {
      b.writeUInt32BE(3, HDR.nbSnapshots);
      b.writeBigUInt64BE(1n << 40n, HDR.snapshotsOffset);
    }),
    'FERRY_IMAGE_TRUNCATED',
  );
});

test('hostile qcow2: L1 and L2 entries pointing at themselves, metadata, misaligned or past the end', async () => {
  await setup();
  const l1 = l1Of(plain);
  const l2 = l2Of(plain);
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE((1n << 63n) | BigInt(l1), l1)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE((1n << 63n) | b.readBigUInt64BE(HDR.refcountTableOffset), l1)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE(BigInt(l2 + 512), l1)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE(1n << 45n, l1)),
    'FERRY_IMAGE_TRUNCATED',
  );
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE(0x00ff_ffff_ffff_0000n, l1)),
    'FERRY_IMAGE_CORRUPT',
  );
  // L2 entry of guest cluster 0.
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE((1n << 63n) | (1n << 44n), l2)),
    'FERRY_IMAGE_TRUNCATED',
  );
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE((1n << 63n) | BigInt(plain.length), l2)),
    'FERRY_IMAGE_TRUNCATED',
  );
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE((1n << 63n) | 0x10200n, l2)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE((1n << 63n) | BigInt(l1), l2)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patch(plain, (b) => b.writeBigUInt64BE((1n << 63n) | BigInt(l2), l2)),
    'FERRY_IMAGE_CORRUPT',
  );
  // Extended L2: a subcluster both allocated and zero.
  await expectFailure(
    patch(extended, (b) => b.writeUInt32BE(b.readUInt32BE(l2Of(extended) + 12), l2Of(extended) + 8)),
    'FERRY_IMAGE_CORRUPT',
  );
});

test('hostile qcow2: compressed descriptors overflowing, zlib bombs, garbage streams', async () => {
  await setup();
  assert.equal((await run(packed)).code, 0);
  const l2 = l2Of(packed);
  const entry = packed.readBigUInt64BE(l2);
  assert.equal((entry >> 62n) & 1n, 1n, 'cluster 0 is compressed');
  // All "additional sectors" bits set: the range runs far past the end of the file.
  await expectFailure(
    patch(packed, (b) => b.writeBigUInt64BE(entry | (0xffn << 54n), l2)),
    'FERRY_IMAGE_TRUNCATED',
  );
  await expectFailure(
    patch(packed, (b) => b.writeBigUInt64BE(entry | (1n << 50n), l2)),
    'FERRY_IMAGE_TRUNCATED',
  );
  // The compressed cluster starting inside the L1 table.
  await expectFailure(
    patch(packed, (b) => b.writeBigUInt64BE((entry & ~((1n << 54n) - 1n)) | BigInt(l1Of(packed) + 8), l2)),
    'FERRY_IMAGE_CORRUPT',
  );
  // A deflate bomb: 2 GiB of zeros squeezed into ~2 MiB, pointed at by cluster 0.
  const bomb = deflateRawSync(Buffer.alloc(64 << 20));
  const at = Math.ceil(packed.length / 512) * 512;
  const sectors = BigInt(Math.min(255, Math.ceil(bomb.length / 512) - 1));
  const withBomb = Buffer.concat([packed, Buffer.alloc(at - packed.length), bomb]);
  withBomb.writeBigUInt64BE((1n << 62n) | (sectors << 54n) | BigInt(at), l2);
  await expectFailure(withBomb, 'FERRY_IMAGE_DECOMPRESSION_FAILED');
  // Garbage where the deflate stream should be.
  const host = Number(entry & ((1n << 54n) - 1n));
  await expectFailure(
    patch(packed, (b) => b.fill(0xff, host, host + 64)),
    'FERRY_IMAGE_DECOMPRESSION_FAILED',
  );
});

test('hostile qcow2: truncation at many points fails cleanly', async () => {
  await setup();
  const cuts = [0, 3, 4, 40, 71, 72, 103, 104, 4096, 65535, 65536, 131072, 200000, 262144, 300000];
  for (let cut = 327680; cut < plain.length; cut += 32768) cuts.push(cut);
  cuts.push(plain.length - 1);
  for (const cut of cuts.filter((c) => c < plain.length)) {
    const r = await run(plain.subarray(0, cut), ['-f', 'qcow2']);
    assert.notEqual(r.code, 0, `cut at ${cut} succeeded`);
    assertCleanFailure(r);
    assert.match(r.stderr, /FERRY_IMAGE_(TRUNCATED|CORRUPT|FORMAT_MISMATCH)/, `cut at ${cut}`);
    assert.ok(r.ms < 5000);
  }
});

/** A copy of `plain` with backing file `name` (and optional format). */
function withBacking(name: string, format?: string): Buffer {
  return patch(plain, (b) => {
    let at = b.readUInt32BE(HDR.headerLength);
    // Replace whatever extensions there are with our own, then the name.
    b.fill(0, at, 65536);
    if (format !== undefined) {
      b.writeUInt32BE(EXT.backingFormat, at);
      b.writeUInt32BE(format.length, at + 4);
      b.write(format, at + 8, 'latin1');
      at += 8 + Math.ceil(format.length / 8) * 8;
    }
    at += 8;
    b.writeBigUInt64BE(BigInt(at), HDR.backingFileOffset);
    b.writeUInt32BE(Buffer.byteLength(name), HDR.backingFileSize);
    b.write(name, at);
  });
}

test('hostile qcow2: backing references outside the directory or to protocols are refused', async () => {
  await setup();
  for (const name of [
    'json:{"file.driver":"file","file.filename":"/etc/passwd"}',
    '/etc/passwd',
    '../x',
    'sub/../../x',
    'nbd://127.0.0.1:10809/x',
    'http://example.com/disk.qcow2',
  ]) {
    await expectFailure(withBacking(name, 'raw'), 'FERRY_REFERENCE_REFUSED');
  }
  await expectFailure(withBacking('missing.qcow2', 'qcow2'), 'FERRY_REFERENCE_NOT_FOUND');
  await expectFailure(withBacking('whatever.img', 'qed'), 'FERRY_IMAGE_UNSUPPORTED');
  await expectFailure(
    patch(withBacking('x'), (b) => b.writeUInt32BE(2000, HDR.backingFileSize)),
    'FERRY_IMAGE_CORRUPT',
  );
  // Loops: a -> a, and a -> b -> a.
  await expectFailure(withBacking('self.qcow2', 'qcow2'), 'FERRY_CHAIN_LOOP', [], 'self.qcow2');
  await writeFile(join(dir, 'loop-b.qcow2'), withBacking('loop-a.qcow2', 'qcow2'));
  await expectFailure(withBacking('loop-b.qcow2', 'qcow2'), 'FERRY_CHAIN_LOOP', [], 'loop-a.qcow2');
  // A declared raw parent is opened as raw even if it looks like qcow2 (no probing).
  await writeFile(join(dir, 'fake-raw.img'), withBacking('/etc/passwd', 'raw'));
  const r = await run(withBacking('fake-raw.img', 'raw'));
  assert.equal(r.code, 0, r.stderr);
});

test('hostile qcow2: external data file names outside the directory are refused', async () => {
  await setup();
  const d = join(dir, 'df.qcow2');
  await qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${join(dir, 'df.data')}`, d, '4M');
  const valid = await readFile(d);
  // The absolute name qemu-img stored is refused by default, accepted when allowed.
  await expectFailure(valid, 'FERRY_REFERENCE_REFUSED', [], 'df-abs.qcow2');
  const ok = await run(valid, ['--allow-external-references'], 'df-abs2.qcow2');
  assert.equal(ok.code, 0, ok.stderr);
  for (const name of ['../etc/passwd', '/etc/passwd', 'json:{}']) {
    const img = patch(valid, (b) => {
      const start = b.readUInt32BE(HDR.headerLength);
      for (let at = start; at < 65536;) {
        const type = b.readUInt32BE(at);
        const len = b.readUInt32BE(at + 4);
        if (type === 0) break;
        if (type === EXT.dataFile) {
          b.fill(0, at + 8, at + 8 + Math.ceil(len / 8) * 8);
          b.writeUInt32BE(name.length, at + 4);
          b.write(name, at + 8);
          // Later extensions are not needed: end the list after this one.
          b.writeBigUInt64BE(0n, at + 8 + Math.ceil(name.length / 8) * 8);
          break;
        }
        at += 8 + Math.ceil(len / 8) * 8;
      }
    });
    await expectFailure(img, 'FERRY_REFERENCE_REFUSED');
  }
});
