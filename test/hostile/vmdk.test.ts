/**
 * Hostile VMDKs: valid images (qemu-img monolithicSparse and streamOptimized, Ferry's
 * VMware-layout stream) patched with bad versions, flags, sizes, offsets past the end,
 * damaged grain markers, decompression bombs and truncation everywhere; descriptors with
 * malicious extent and parent references, absurd counts and overflowing numbers; parent
 * loops. Each must end through the CLI with a coded error, no stack trace, well under 5 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import {
  assertCleanFailure,
  ferry,
  pseudoRandom,
  qemuImg,
  qemuIo,
  tempDir,
  type CliResult,
} from '../helpers/qemu.js';
import { COWD, COWD_MAGIC, GD_AT_END, HDR } from '../../src/disk/formats/vmdk/layout.js';

let dir: string;
let sparse: Buffer; // qemu monolithicSparse: data at 0 (64 KiB) and 6 MiB (1 MiB)
let stream: Buffer; // qemu streamOptimized (grain directory in the header)
let vmware: Buffer; // Ferry's stream (grain directory in the footer)

async function setup(): Promise<void> {
  if (sparse) return;
  dir = await tempDir('ferry-hostile-vmdk-');
  const s = join(dir, 'valid-sparse.vmdk');
  await qemuImg('create', '-f', 'vmdk', s, '8M');
  await qemuIo(s, 'vmdk', 'write -P 0x41 0 64k', 'write -P 0x42 6M 1M');
  sparse = await readFile(s);
  const raw = join(dir, 'src.raw');
  await writeFile(
    raw,
    Buffer.concat([pseudoRandom(1 << 20, 5), Buffer.alloc(3 << 20), Buffer.alloc(1 << 20, 0x61)]),
  );
  const so = join(dir, 'valid-stream.vmdk');
  await qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, so);
  stream = await readFile(so);
  const fv = join(dir, 'valid-vmware.vmdk');
  const r = await ferry(['image', 'convert', raw, fv, '-O', 'vmdk']);
  assert.equal(r.code, 0, r.stderr);
  vmware = await readFile(fv);
}

let n = 0;
async function run(img: Buffer | string, name = `h${n++}.vmdk`, cmd = 'checksum'): Promise<CliResult> {
  const path = join(dir, name);
  await writeFile(path, img);
  return ferry(['image', cmd, path], { timeoutMs: 20_000 });
}

async function expectFailure(img: Buffer | string, code: string, name?: string): Promise<void> {
  const r = await run(img, name);
  assertCleanFailure(r, code);
  assert.ok(r.ms < 5000, `took ${r.ms} ms`);
}

function patch(img: Buffer, f: (b: Buffer) => void): Buffer {
  const b = Buffer.from(img);
  f(b);
  return b;
}

const gdOf = (b: Buffer) => Number(b.readBigUInt64LE(HDR.gdOffset)) * 512;
/** File offset of grain table entry `grain` (first grain table). */
const gteOf = (b: Buffer, grain: number) => b.readUInt32LE(gdOf(b)) * 512 + grain * 4;

/** Replaces the embedded descriptor of a hosted sparse file. */
function withDescriptor(img: Buffer, text: string): Buffer {
  return patch(img, (b) => {
    const at = Number(b.readBigUInt64LE(HDR.descriptorOffset)) * 512;
    const size = Number(b.readBigUInt64LE(HDR.descriptorSize)) * 512;
    b.fill(0, at, at + size);
    b.write(text, at);
  });
}

test('hostile vmdk: sparse header fields', async () => {
  await setup();
  assert.equal((await run(sparse)).code, 0);
  const hdr = (f: (b: Buffer) => void, code: string) => expectFailure(patch(sparse, f), code);
  await hdr((b) => b.writeUInt32LE(9, HDR.version), 'FERRY_IMAGE_UNSUPPORTED');
  await hdr(
    (b) => b.writeUInt32LE(b.readUInt32LE(HDR.flags) | (1 << 9), HDR.flags),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  await hdr((b) => b.writeUInt16LE(7, HDR.compressAlgorithm), 'FERRY_IMAGE_UNSUPPORTED');
  await hdr((b) => (b[HDR.doubleEndLineChar1] = 0x0a), 'FERRY_IMAGE_CORRUPT');
  await hdr((b) => b.writeBigUInt64LE(100n, HDR.grainSize), 'FERRY_IMAGE_CORRUPT');
  await hdr((b) => b.writeBigUInt64LE(0n, HDR.grainSize), 'FERRY_IMAGE_CORRUPT');
  await hdr((b) => b.writeBigUInt64LE(1n << 20n, HDR.grainSize), 'FERRY_IMAGE_TOO_LARGE');
  await hdr((b) => b.writeUInt32LE(0, HDR.numGTEsPerGT), 'FERRY_IMAGE_CORRUPT');
  await hdr((b) => b.writeUInt32LE(0xffffffff, HDR.numGTEsPerGT), 'FERRY_IMAGE_CORRUPT');
  await hdr((b) => b.writeBigUInt64LE(1n << 60n, HDR.capacity), 'FERRY_IMAGE_TOO_LARGE');
  await hdr((b) => b.writeBigUInt64LE(1n << 40n, HDR.capacity), 'FERRY_IMAGE_TOO_LARGE');
  await hdr((b) => b.writeBigUInt64LE(1n << 63n, HDR.gdOffset), 'FERRY_IMAGE_TRUNCATED');
  await hdr((b) => b.writeBigUInt64LE(BigInt(b.length / 512), HDR.gdOffset), 'FERRY_IMAGE_TRUNCATED');
  await hdr((b) => b.writeBigUInt64LE(0n, HDR.gdOffset), 'FERRY_IMAGE_CORRUPT');
  await hdr((b) => b.writeBigUInt64LE(GD_AT_END, HDR.gdOffset), 'FERRY_IMAGE_CORRUPT');
  await hdr((b) => b.writeBigUInt64LE(1n << 40n, HDR.descriptorSize), 'FERRY_IMAGE_TOO_LARGE');
  await hdr((b) => b.writeBigUInt64LE(BigInt(b.length / 512), HDR.descriptorOffset), 'FERRY_IMAGE_TRUNCATED');
  await hdr((b) => b.writeBigUInt64LE(1n << 50n, HDR.overHead), 'FERRY_IMAGE_TRUNCATED');
});

test('hostile vmdk: grain directory and table entries', async () => {
  await setup();
  const t = (f: (b: Buffer) => void, code: string) => expectFailure(patch(sparse, f), code);
  await t((b) => b.writeUInt32LE(b.length / 512, gdOf(b)), 'FERRY_IMAGE_TRUNCATED');
  await t((b) => b.writeUInt32LE(0xffffffff, gdOf(b)), 'FERRY_IMAGE_TRUNCATED');
  await t((b) => b.writeUInt32LE(b.length / 512, gteOf(b, 0)), 'FERRY_IMAGE_TRUNCATED');
  await t((b) => b.writeUInt32LE(0xffffffff, gteOf(b, 96)), 'FERRY_IMAGE_TRUNCATED');
  // The last grain partly past the end.
  await t((b) => b.writeUInt32LE(b.length / 512 - 1, gteOf(b, 3)), 'FERRY_IMAGE_TRUNCATED');
  const m = await run(
    patch(sparse, (b) => b.writeUInt32LE(0xfffffff0, gteOf(b, 5))),
    'map.vmdk',
    'map',
  );
  assertCleanFailure(m, 'FERRY_IMAGE_TRUNCATED');
});

test('hostile vmdk: grain markers and decompression bombs', async () => {
  await setup();
  const marker = (b: Buffer) => b.readUInt32LE(gteOf(b, 0)) * 512;
  const t = (img: Buffer, f: (b: Buffer) => void, code: string) => expectFailure(patch(img, f), code);
  for (const img of [stream, vmware]) {
    const g = (b: Buffer) => (img === stream ? marker(b) : vmwareGrain0(b));
    await t(img, (b) => b.writeBigUInt64LE(128n, g(b)), 'FERRY_IMAGE_CORRUPT'); // lba of grain 1
    await t(img, (b) => b.writeUInt32LE(0, g(b) + 8), 'FERRY_IMAGE_CORRUPT');
    await t(img, (b) => b.writeUInt32LE(0x7fffffff, g(b) + 8), 'FERRY_IMAGE_CORRUPT');
    await t(img, (b) => b.fill(0x55, g(b) + 12, g(b) + 40), 'FERRY_IMAGE_DECOMPRESSION_FAILED');
    // 16 MiB of zeros deflate to ~16 KiB: a bomb that fits the marker's size limit.
    const bomb = deflateSync(Buffer.alloc(16 << 20));
    await t(
      img,
      (b) => {
        b.writeUInt32LE(bomb.length, g(b) + 8);
        bomb.copy(b, g(b) + 12);
      },
      'FERRY_IMAGE_DECOMPRESSION_FAILED',
    );
  }
  // The last grain's payload runs past the end of the file.
  await t(
    stream,
    (b) => b.writeUInt32LE(2 * 65536 - 1, b.readUInt32LE(gteOf(b, 79)) * 512 + 8),
    'FERRY_IMAGE_TRUNCATED',
  );
});

/** Ferry's stream: grain 0's marker is the first sector after the header and descriptor. */
function vmwareGrain0(b: Buffer): number {
  return Number(b.readBigUInt64LE(HDR.overHead)) * 512;
}

test('hostile vmdk: VMware stream footer', async () => {
  await setup();
  assert.equal((await run(vmware)).code, 0);
  const footer = vmware.length - 1024;
  await expectFailure(vmware.subarray(0, vmware.length - 512), 'FERRY_IMAGE_CORRUPT');
  await expectFailure(
    patch(vmware, (b) => b.writeUInt32LE(2, footer - 512 + 12)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patch(vmware, (b) => b.writeBigUInt64LE(GD_AT_END, footer + HDR.gdOffset)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patch(vmware, (b) => b.writeBigUInt64LE(1n << 40n, footer + HDR.gdOffset)),
    'FERRY_IMAGE_TRUNCATED',
  );
  await expectFailure(
    patch(vmware, (b) => b.writeBigUInt64LE(1n << 45n, footer + HDR.capacity)),
    'FERRY_IMAGE_TOO_LARGE',
  );
  await expectFailure(
    patch(vmware, (b) => b.fill(1, b.length - 512)),
    'FERRY_IMAGE_CORRUPT',
  );
});

test('hostile vmdk: truncated at many points', async () => {
  await setup();
  for (const img of [sparse, stream, vmware]) {
    const whole = (await run(img)).stdout.split(/\s/)[0];
    const cuts = [
      4,
      100,
      511,
      512,
      1024,
      4096,
      65536,
      70000,
      img.length >> 1,
      img.length - 4096,
      img.length - 512,
      img.length - 1,
    ];
    for (const cut of cuts) {
      const r = await run(img.subarray(0, cut));
      assert.ok(r.ms < 5000, `cut ${cut} took ${r.ms} ms`);
      // qemu 7.2 zero-fills a whole grain before writing each compressed one over it, so its
      // stream ends with up to a grain of zeros after the last payload: cutting only those
      // loses nothing (same checksum). Every other cut must fail cleanly.
      if (r.code === 0 && img === stream && cut > img.length - 65536)
        assert.equal(r.stdout.split(/\s/)[0], whole);
      else assertCleanFailure(r);
    }
  }
});

test('hostile vmdk: descriptor references outside the directory are refused, never read', async () => {
  await setup();
  await writeFile(join(dir, 'ok-flat.bin'), Buffer.alloc(1 << 20, 7));
  const desc = (file: string, type = 'FLAT "%" 0') =>
    `# Disk DescriptorFile\nversion=1\nCID=00000001\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 2048 ${type.replace('%', file)}\n`;
  assert.equal((await run(desc('ok-flat.bin'))).code, 0);
  for (const ref of [
    '../../etc/passwd',
    '/etc/passwd',
    'json:{file.filename:/etc/passwd}',
    'nbd://evil:10809/x',
    'http://x/y',
  ]) {
    await expectFailure(desc(ref), 'FERRY_REFERENCE_REFUSED');
    await expectFailure(desc(ref, 'SPARSE "%"'), 'FERRY_REFERENCE_REFUSED');
    const child = withDescriptor(
      sparse,
      `# Disk DescriptorFile\nversion=1\nCID=00000002\nparentCID=00000001\ncreateType="monolithicSparse"\nparentFileNameHint="${ref}"\n`,
    );
    await expectFailure(child, 'FERRY_REFERENCE_REFUSED');
  }
  await expectFailure(desc('missing.bin'), 'FERRY_REFERENCE_NOT_FOUND');
});

test('hostile vmdk: absurd descriptors', async () => {
  await setup();
  const head = 'version=1\nCID=00000001\nparentCID=ffffffff\ncreateType="monolithicFlat"\n';
  await expectFailure(head + 'RW 1 ZERO\n'.repeat(90_000), 'FERRY_IMAGE_TOO_LARGE');
  await expectFailure(head + 'RW 18446744073709551617 ZERO\n', 'FERRY_IMAGE_TOO_LARGE');
  await expectFailure(head + 'RW 123456789012345678901234 ZERO\n', 'FERRY_IMAGE_CORRUPT');
  await expectFailure(head + `RW ${2 ** 36} ZERO\n`.repeat(3), 'FERRY_IMAGE_TOO_LARGE');
  await expectFailure(head + 'RW 0x100 ZERO\n', 'FERRY_IMAGE_CORRUPT');
  await expectFailure(head + 'RW 100 FLAT "ok-flat.bin" -1\n', 'FERRY_IMAGE_CORRUPT');
  await expectFailure(head + 'RW 100 FLAT "ok-flat.bin" 99999999999\n', 'FERRY_IMAGE_TRUNCATED');
  await expectFailure(head + 'NOACCESS 100 FLAT "ok-flat.bin" 0\n', 'FERRY_IMAGE_UNSUPPORTED');
  await expectFailure(head + 'RW 100 VMFSRDM "ok-flat.bin"\n', 'FERRY_IMAGE_UNSUPPORTED');
  await expectFailure(head, 'FERRY_IMAGE_CORRUPT'); // no extents
  await expectFailure(
    head.replace('monolithicFlat', 'fullDevice') + 'RW 1 ZERO\n',
    'FERRY_IMAGE_UNSUPPORTED',
  );
  // Without the header comment QEMU's probe rule (version 1-3) makes it raw; with it, refused.
  await expectFailure(
    '# Disk DescriptorFile\n' + head.replace('version=1', 'version=4') + 'RW 1 ZERO\n',
    'FERRY_IMAGE_UNSUPPORTED',
  );
  await expectFailure(head.replace('CID=00000001', 'CID=zz') + 'RW 1 ZERO\n', 'FERRY_IMAGE_CORRUPT');
  // A SPARSE extent that is text, or that is itself a descriptor.
  await expectFailure(head + 'RW 2048 SPARSE "ok-flat.bin"\n', 'FERRY_IMAGE_CORRUPT');
  const nested = patch(sparse, (b) => b.writeBigUInt64LE(0n, HDR.capacity));
  await writeFile(join(dir, 'nested.vmdk'), nested);
  await expectFailure(head + 'RW 2048 SPARSE "nested.vmdk"\n', 'FERRY_IMAGE_CORRUPT');
  // The extent's own capacity disagrees with the descriptor.
  await writeFile(join(dir, 'ext.vmdk'), sparse);
  await expectFailure(head + 'RW 2047 SPARSE "ext.vmdk"\n', 'FERRY_IMAGE_CORRUPT');
  // A COWD extent whose directory is too small for its capacity.
  const cowd = Buffer.alloc(4096);
  cowd.writeUInt32LE(COWD_MAGIC, 0);
  cowd.writeUInt32LE(1, COWD.version);
  cowd.writeUInt32LE(1 << 24, COWD.capacity);
  cowd.writeUInt32LE(1, COWD.grainSize);
  cowd.writeUInt32LE(1, COWD.gdOffset);
  cowd.writeUInt32LE(1, COWD.numGDEntries);
  await expectFailure(cowd, 'FERRY_IMAGE_CORRUPT');
});

test('hostile vmdk: parent loops and mismatched parents', async () => {
  await setup();
  const d = (cid: string, parentCid: string, hint: string) =>
    `# Disk DescriptorFile\nversion=1\nCID=${cid}\nparentCID=${parentCid}\ncreateType="monolithicSparse"\nparentFileNameHint="${hint}"\n`;
  await expectFailure(
    withDescriptor(sparse, d('0000000a', '0000000a', 'self.vmdk')),
    'FERRY_CHAIN_LOOP',
    'self.vmdk',
  );
  await writeFile(join(dir, 'loop-b.vmdk'), withDescriptor(sparse, d('0000000b', '0000000a', 'loop-a.vmdk')));
  await expectFailure(
    withDescriptor(sparse, d('0000000a', '0000000b', 'loop-b.vmdk')),
    'FERRY_CHAIN_LOOP',
    'loop-a.vmdk',
  );
  await expectFailure(
    withDescriptor(sparse, d('0000000c', '12345678', 'loop-b.vmdk')),
    'FERRY_CHAIN_MISMATCH',
  );
  await writeFile(join(dir, 'text.raw'), 'not a vmdk at all, but a long enough raw file');
  await expectFailure(
    withDescriptor(sparse, d('0000000c', '12345678', 'text.raw')),
    'FERRY_IMAGE_FORMAT_MISMATCH',
  );
});
