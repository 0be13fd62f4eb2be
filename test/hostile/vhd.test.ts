/**
 * Hostile VHDs: valid images (made by qemu-img, then patched) with damaged checksums,
 * offsets and sizes past the end, absurd counts, bad block sizes, truncation everywhere,
 * malicious parent locators and parent loops. Each must end through the CLI with a coded
 * error, no stack trace, in well under 5 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertCleanFailure, ferry, qemuImg, qemuIo, tempDir, type CliResult } from '../helpers/qemu.js';
import { F, H, PLATFORM } from '../../src/disk/formats/vhd/layout.js';
import {
  batOffset,
  flipByte,
  headerOffset,
  patchFooter,
  patchHeader,
  toDifferencing,
  uniqueIdOf,
  utf16le,
  type LocatorInput,
} from '../../src/disk/formats/vhd/testkit.js';

let dir: string;
let dynamic: Buffer;
let fixed: Buffer;

async function setup(): Promise<void> {
  if (dynamic) return;
  dir = await tempDir('ferry-hostile-vhd-');
  const d = join(dir, 'valid-dynamic.vhd');
  await qemuImg('create', '-f', 'vpc', '-o', 'force_size=on', d, '8M');
  await qemuIo(d, 'vpc', 'write -P 0x41 0 64k', 'write -P 0x42 6M 1M');
  dynamic = await readFile(d);
  const f = join(dir, 'valid-fixed.vhd');
  await qemuImg('create', '-f', 'vpc', '-o', 'subformat=fixed,force_size=on', f, '4M');
  fixed = await readFile(f);
}

let n = 0;
async function run(img: Buffer, args: string[] = [], name = `h${n++}.vhd`): Promise<CliResult> {
  const path = join(dir, name);
  await writeFile(path, img);
  return ferry(['image', 'checksum', path, ...args], { timeoutMs: 20_000 });
}

async function expectFailure(img: Buffer, code: string, args: string[] = [], name?: string): Promise<void> {
  const r = await run(img, args, name);
  assertCleanFailure(r, code);
  assert.ok(r.ms < 5000, `took ${r.ms} ms`);
}

test('hostile vhd: checksums, cookies, versions and types', async () => {
  await setup();
  assert.equal((await run(dynamic)).code, 0);
  await expectFailure(
    patchFooter(dynamic, (f) => flipByte(f, F.timestamp), false),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patchHeader(dynamic, (h) => flipByte(h, H.parentTimestamp), false),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patchHeader(dynamic, (h) => h.write('xxsparse', 0, 'latin1')),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patchFooter(dynamic, (f) => f.writeUInt32BE(0x00020000, F.version)),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  await expectFailure(
    patchHeader(dynamic, (h) => h.writeUInt32BE(0x00050000, H.version)),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  for (const type of [0, 1, 5, 6, 0x80000003]) {
    await expectFailure(
      patchFooter(dynamic, (f) => f.writeUInt32BE(type, F.diskType)),
      'FERRY_IMAGE_UNSUPPORTED',
    );
  }
  // A fixed footer with a bad checksum is not a VHD signature: named as vhd it is refused.
  const badFixed = patchFooter(fixed, (f) => flipByte(f, F.timestamp), false);
  await expectFailure(badFixed, 'FERRY_IMAGE_FORMAT_MISMATCH', ['-f', 'vhd']);
  // The dynamic footer copy lost: the trailing footer alone is not enough.
  const noCopy = Buffer.from(dynamic);
  noCopy.fill(0, 0, 512);
  await expectFailure(noCopy, 'FERRY_IMAGE_CORRUPT');
});

test('hostile vhd: sizes, tables and offsets past the end or beyond the limits', async () => {
  await setup();
  const hdr = headerOffset(dynamic);
  // Virtual size beyond 2040 GiB, through current_size and through the geometry.
  await expectFailure(
    patchFooter(dynamic, (f) => f.writeBigUInt64BE(2041n << 30n, F.currentSize)),
    'FERRY_IMAGE_TOO_LARGE',
  );
  await expectFailure(
    patchFooter(dynamic, (f) => f.writeBigUInt64BE(0xfffffffffffffe00n, F.currentSize)),
    'FERRY_IMAGE_TOO_LARGE',
  );
  await expectFailure(
    patchFooter(dynamic, (f) => {
      f.write('vpc ', F.creatorApp, 'latin1');
      f.writeUInt16BE(65535, F.cylinders);
      f[F.heads] = 255;
      f[F.sectorsPerTrack] = 255;
    }),
    // 65535 × 255 × 255 sectors is 2032 GiB (under the cap) but the 4-entry BAT cannot map it.
    'FERRY_IMAGE_CORRUPT',
  );
  // Dynamic header offset past the end, and absurd.
  await expectFailure(
    patchFooter(dynamic, (f) => f.writeBigUInt64BE(BigInt(dynamic.length - 100), F.dataOffset)),
    'FERRY_IMAGE_TRUNCATED',
  );
  await expectFailure(
    patchFooter(dynamic, (f) => f.writeBigUInt64BE(0xffffffffffffffffn, F.dataOffset)),
    'FERRY_IMAGE_TRUNCATED',
  );
  // BAT: past the end, huge, too small for the disk.
  await expectFailure(
    patchHeader(dynamic, (h) => h.writeBigUInt64BE(BigInt(dynamic.length - 4), H.tableOffset)),
    'FERRY_IMAGE_TRUNCATED',
  );
  await expectFailure(
    patchHeader(dynamic, (h) => h.writeBigUInt64BE(1n << 62n, H.tableOffset)),
    'FERRY_IMAGE_TRUNCATED',
  );
  await expectFailure(
    patchHeader(dynamic, (h) => h.writeUInt32BE(0xffffffff, H.maxTableEntries)),
    'FERRY_IMAGE_TOO_LARGE',
  );
  await expectFailure(
    patchHeader(dynamic, (h) => h.writeUInt32BE((8 << 20) + 1, H.maxTableEntries)),
    'FERRY_IMAGE_TOO_LARGE',
  );
  await expectFailure(
    patchHeader(dynamic, (h) => h.writeUInt32BE(3, H.maxTableEntries)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patchHeader(dynamic, (h) => h.writeUInt32BE(2 << 20, H.maxTableEntries)),
    'FERRY_IMAGE_TRUNCATED',
  );
  // Block size: zero, not a power of two, too small, huge.
  await expectFailure(
    patchHeader(dynamic, (h) => h.writeUInt32BE(0, H.blockSize)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patchHeader(dynamic, (h) => h.writeUInt32BE(3 << 20, H.blockSize)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patchHeader(dynamic, (h) => h.writeUInt32BE(0xffffffff, H.blockSize)),
    'FERRY_IMAGE_CORRUPT',
  );
  await expectFailure(
    patchHeader(dynamic, (h) => h.writeUInt32BE(512, H.blockSize)),
    'FERRY_IMAGE_UNSUPPORTED',
  );
  await expectFailure(
    patchHeader(dynamic, (h) => h.writeUInt32BE(0x80000000, H.blockSize)),
    'FERRY_IMAGE_TOO_LARGE',
  );
  // Block entries past the end of the file, and the largest one.
  for (const entry of [dynamic.length / 512 - 2, 0xfffffffe, 0x7fffffff]) {
    const img = Buffer.from(dynamic);
    img.writeUInt32BE(entry, batOffset(img) + 4 * 3);
    await expectFailure(img, 'FERRY_IMAGE_TRUNCATED');
  }
  // A fixed disk claiming more data than the file holds.
  await expectFailure(
    patchFooter(fixed, (f) => f.writeBigUInt64BE(1n << 30n, F.currentSize)),
    'FERRY_IMAGE_TRUNCATED',
  );
  assert.ok(hdr > 0);
});

test('hostile vhd: truncation at many points fails cleanly', async () => {
  await setup();
  const cuts = [512, 700, 1024, 1535, 1536, 1537, 2047, 2048, 2560, 3072, 4096, 65536];
  for (let c = 1 << 20; c < dynamic.length - 512; c += 777_777) cuts.push(c);
  cuts.push(dynamic.length - 513, dynamic.length - 2 * 1024 * 1024);
  for (const cut of cuts) {
    const r = await run(dynamic.subarray(0, cut));
    assertCleanFailure(r);
    assert.match(r.stderr, /FERRY_IMAGE_(TRUNCATED|CORRUPT)/, `cut at ${cut}: ${r.stderr}`);
    assert.ok(r.ms < 5000);
  }
  // Below one sector it is no VHD at all (raw); inside the trailing footer it still opens
  // (QEMU uses the copy at offset 0 too) with a warning.
  assert.equal((await run(dynamic.subarray(0, 511))).code, 0);
  const tail = await run(dynamic.subarray(0, dynamic.length - 100));
  assert.equal(tail.code, 0, tail.stderr);
  for (const cut of [511, 1000, 4096, fixed.length - 1]) {
    const r = await run(fixed.subarray(0, cut), ['-f', 'vhd']);
    assertCleanFailure(r);
    assert.ok(r.ms < 5000);
  }
});

function diff(
  locators: LocatorInput[],
  parentName?: string,
  parentId = '01234567-89ab-cdef-0123-456789abcdef',
): Buffer {
  return toDifferencing(dynamic, { parentId, locators, ...(parentName ? { parentName } : {}) });
}

test('hostile vhd: parent locators out of bounds, absurd, or pointing outside are refused', async () => {
  await setup();
  const w2ru = (s: string): LocatorInput => ({ platform: PLATFORM.W2ru, data: utf16le(s) });
  await expectFailure(
    diff([{ ...w2ru('a.vhd'), dataOffset: dynamic.length + 4096 }]),
    'FERRY_IMAGE_TRUNCATED',
  );
  await expectFailure(diff([{ ...w2ru('a.vhd'), dataOffset: 2 ** 53 }]), 'FERRY_IMAGE_TRUNCATED');
  await expectFailure(diff([{ ...w2ru('a.vhd'), dataLength: 0xffffffff }]), 'FERRY_IMAGE_TOO_LARGE');
  await expectFailure(diff([{ ...w2ru('a.vhd'), dataLength: 1 << 20 }]), 'FERRY_IMAGE_TOO_LARGE');
  await expectFailure(diff([]), 'FERRY_IMAGE_CORRUPT'); // no locator, no parent name
  for (const name of [
    '..\\x.vhd',
    '../../x.vhd',
    '/etc/passwd',
    '\\\\server\\share\\x.vhd',
    'json:{"file":"/etc/passwd"}',
    'nbd://127.0.0.1:10809/x',
  ]) {
    await expectFailure(diff([w2ru(name)]), 'FERRY_REFERENCE_REFUSED');
  }
  // Absolute-only locators (Windows and Mac) are refused without --allow-external-references.
  await expectFailure(
    diff([{ platform: PLATFORM.W2ku, data: utf16le('C:\\x.vhd') }], 'x.vhd'),
    'FERRY_REFERENCE_REFUSED',
  );
  await expectFailure(
    diff([{ platform: PLATFORM.Wi2k, data: Buffer.from('C:\\x.vhd') }]),
    'FERRY_REFERENCE_REFUSED',
  );
  await expectFailure(
    diff([{ platform: PLATFORM.MacX, data: Buffer.from('file:///etc/passwd') }]),
    'FERRY_REFERENCE_REFUSED',
  );
  await expectFailure(
    diff([{ platform: PLATFORM.MacX, data: Buffer.from('http://example.com/x.vhd') }]),
    'FERRY_REFERENCE_REFUSED',
  );
  // Even allowed, protocols stay refused and a Windows path cannot be opened here.
  await expectFailure(diff([w2ru('nbd://127.0.0.1:10809/x')]), 'FERRY_REFERENCE_REFUSED', [
    '--allow-external-references',
  ]);
  await expectFailure(
    diff([{ platform: PLATFORM.W2ku, data: utf16le('C:\\x.vhd') }]),
    'FERRY_REFERENCE_NOT_FOUND',
    ['--allow-external-references'],
  );
  // The parent name is used only as a base name: it cannot leave the directory.
  await expectFailure(diff([], '..\\..\\etc\\passwd'), 'FERRY_REFERENCE_NOT_FOUND');
  // /etc/passwd named with allow: opened as a raw parent, whose missing id mismatches nothing,
  // but it is never read as a VHD (declared format vhd): a format mismatch.
  await expectFailure(diff([w2ru('/etc/passwd')]), 'FERRY_IMAGE_FORMAT_MISMATCH', [
    '--allow-external-references',
  ]);
});

test('hostile vhd: parent loops and self references end with FERRY_CHAIN_LOOP', async () => {
  await setup();
  // Two differencing disks naming each other, each with the other's id as parent id.
  const idA = 'aaaaaaaa-0000-0000-0000-000000000001';
  const idB = 'bbbbbbbb-0000-0000-0000-000000000002';
  const a = toDifferencing(dynamic, {
    parentId: idB,
    uniqueId: idA,
    locators: [{ platform: PLATFORM.W2ru, data: utf16le('.\\loop-b.vhd') }],
  });
  const b = toDifferencing(dynamic, {
    parentId: idA,
    uniqueId: idB,
    locators: [{ platform: PLATFORM.W2ru, data: utf16le('loop-a.vhd') }],
  });
  await writeFile(join(dir, 'loop-b.vhd'), b);
  await expectFailure(a, 'FERRY_CHAIN_LOOP', [], 'loop-a.vhd');
  assert.equal(uniqueIdOf(a), idA);
  const self = toDifferencing(dynamic, {
    parentId: idA,
    uniqueId: idA,
    locators: [{ platform: PLATFORM.W2ru, data: utf16le('self.vhd') }],
  });
  await expectFailure(self, 'FERRY_CHAIN_LOOP', [], 'self.vhd');
});
