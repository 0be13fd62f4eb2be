/**
 * Hostile VHDX: valid images (made by qemu-img or the driver's test support, then patched)
 * with broken checksums, absurd counts and sizes, regions and blocks past the end or
 * overlapping, unknown required features, damaged or malicious logs, truncation at every
 * structure, malicious parent locators and parent loops. Each must end through the CLI
 * with a coded error, no stack trace, in well under 5 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertCleanFailure, ferry, qemuImg, qemuIo, tempDir, type CliResult } from '../helpers/qemu.js';
import { buildParentLocator, setBatEntry } from '../../src/disk/formats/vhdx/build.js';
import { readGuid, writeGuid } from '../../src/disk/formats/vhdx/guid.js';
import {
  GUID_BAT_REGION,
  GUID_FILE_PARAMETERS,
  GUID_LOGICAL_SECTOR_SIZE,
  GUID_METADATA_REGION,
  GUID_VIRTUAL_DISK_SIZE,
  HEADER_OFFSETS,
  PAYLOAD_FULLY_PRESENT,
  PAYLOAD_PARTIALLY_PRESENT,
} from '../../src/disk/formats/vhdx/layout.js';
import {
  buildLogEntry,
  buildTestImage,
  rehashHeader,
  rehashRegionTable,
  setLogGuid,
  type TestDescriptor,
} from '../../src/disk/formats/vhdx/testing.js';

const MiB = 1 << 20;
const RT = [192 * 1024, 256 * 1024];
let dir: string;
let qemu: Buffer;

async function setup(): Promise<void> {
  if (qemu) return;
  dir = await tempDir('ferry-hostile-vhdx-');
  const q = join(dir, 'valid.vhdx');
  await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M,block_state_zero=off', q, '8M');
  await qemuIo(q, 'vhdx', 'write -P 0x41 0 64k', 'write -P 0x42 6M 1M');
  qemu = await readFile(q);
}

let n = 0;
async function run(img: Buffer, args: string[] = [], name = `h${n++}.vhdx`): Promise<CliResult> {
  const path = join(dir, name);
  await writeFile(path, img);
  return ferry(['image', 'checksum', path, ...args], { timeoutMs: 20_000 });
}

async function expectFailure(img: Buffer, code: string, what: string, name?: string): Promise<void> {
  const r = await run(img, [], name);
  try {
    assertCleanFailure(r, code);
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`);
  }
  assert.ok(r.ms < 5000, `${what} took ${r.ms} ms`);
}

/** A copy with both headers patched and re-checksummed. */
function headers(img: Buffer, patch: (h: Buffer) => void): Buffer {
  const out = Buffer.from(img);
  for (const slot of [1, 2] as const) {
    const at = HEADER_OFFSETS[slot - 1] as number;
    patch(out.subarray(at, at + 4096));
    rehashHeader(out, slot);
  }
  return out;
}

/** A copy with both region tables patched and re-checksummed. */
function regions(img: Buffer, patch: (t: Buffer) => void): Buffer {
  const out = Buffer.from(img);
  for (const slot of [1, 2] as const) {
    const at = RT[slot - 1] as number;
    patch(out.subarray(at, at + 65536));
    rehashRegionTable(out, slot);
  }
  return out;
}

function regionEntry(img: Buffer, guid: string): number {
  for (let i = 0; i < 8; i++) if (readGuid(img, RT[0]! + 16 + i * 32) === guid) return 16 + i * 32;
  throw new Error(`no region ${guid}`);
}

function regionOffset(img: Buffer, guid: string): number {
  return Number(img.readBigUInt64LE(RT[0]! + regionEntry(img, guid) + 16));
}

/** File offset of the metadata table entry of `guid`. */
function metaEntry(img: Buffer, guid: string): number {
  const md = regionOffset(img, GUID_METADATA_REGION);
  for (let i = 0; i < 16; i++) if (readGuid(img, md + 32 + i * 32) === guid) return md + 32 + i * 32;
  throw new Error(`no metadata item ${guid}`);
}

/** File offset of the value of metadata item `guid`. */
function metaItem(img: Buffer, guid: string): number {
  return regionOffset(img, GUID_METADATA_REGION) + img.readUInt32LE(metaEntry(img, guid) + 16);
}

function flip(b: Buffer, at: number): void {
  b.writeUInt8((b.readUInt8(at) ^ 1) & 0xff, at);
}

function patched(img: Buffer, patch: (b: Buffer) => void): Buffer {
  const out = Buffer.from(img);
  patch(out);
  return out;
}

test('hostile vhdx: headers, region tables and metadata', async () => {
  await setup();
  assert.equal((await run(qemu)).code, 0);
  const bothHeaders = patched(qemu, (b) => {
    flip(b, HEADER_OFFSETS[0] + 100);
    flip(b, HEADER_OFFSETS[1] + 100);
  });
  await expectFailure(bothHeaders, 'FERRY_IMAGE_CORRUPT', 'both header CRCs');
  await expectFailure(
    headers(qemu, (h) => h.writeUInt16LE(2, 66)),
    'FERRY_IMAGE_UNSUPPORTED',
    'version 2',
  );
  await expectFailure(
    headers(qemu, (h) => h.writeUInt32LE(12345, 68)),
    'FERRY_IMAGE_CORRUPT',
    'log length',
  );
  const bothTables = patched(qemu, (b) => {
    flip(b, RT[0]! + 100);
    flip(b, RT[1]! + 100);
  });
  await expectFailure(bothTables, 'FERRY_IMAGE_CORRUPT', 'both region table CRCs');
  await expectFailure(
    regions(qemu, (t) => t.writeUInt32LE(0xffffffff, 8)),
    'FERRY_IMAGE_CORRUPT',
    'region count',
  );
  const bat = regionEntry(qemu, GUID_BAT_REGION);
  const md = regionEntry(qemu, GUID_METADATA_REGION);
  await expectFailure(
    regions(qemu, (t) => t.writeBigUInt64LE(t.readBigUInt64LE(md + 16), bat + 16)),
    'FERRY_IMAGE_CORRUPT',
    'BAT over metadata',
  );
  await expectFailure(
    regions(qemu, (t) => t.writeBigUInt64LE(1n << 40n, md + 16)),
    'FERRY_IMAGE_TRUNCATED',
    'metadata past EOF',
  );
  await expectFailure(
    regions(qemu, (t) => t.writeBigUInt64LE(2n ** 63n, bat + 16)),
    'FERRY_IMAGE_CORRUPT',
    'BAT at 2^63',
  );
  await expectFailure(
    regions(qemu, (t) => t.writeUInt32LE(0, bat + 24)),
    'FERRY_IMAGE_CORRUPT',
    'BAT length 0',
  );
  await expectFailure(
    regions(qemu, (t) => {
      t.writeUInt32LE(3, 8);
      writeGuid(t, 16 + 2 * 32, '0badc0de-0000-4000-8000-000000000000');
      t.writeBigUInt64LE(BigInt(64 * MiB), 16 + 2 * 32 + 16);
      t.writeUInt32LE(MiB, 16 + 2 * 32 + 24);
      t.writeUInt32LE(1, 16 + 2 * 32 + 28);
    }),
    'FERRY_IMAGE_UNSUPPORTED',
    'unknown required region',
  );

  const mdAt = regionOffset(qemu, GUID_METADATA_REGION);
  await expectFailure(
    patched(qemu, (b) => b.writeUInt16LE(65535, mdAt + 10)),
    'FERRY_IMAGE_CORRUPT',
    'md count',
  );
  await expectFailure(
    patched(qemu, (b) => b.writeUInt32LE(MiB - 2, metaEntry(b, GUID_VIRTUAL_DISK_SIZE) + 16)),
    'FERRY_IMAGE_CORRUPT',
    'md item past the region',
  );
  for (const bs of [0, 1, 3 * MiB, 512 * MiB, 0xffffffff]) {
    await expectFailure(
      patched(qemu, (b) => b.writeUInt32LE(bs, metaItem(b, GUID_FILE_PARAMETERS))),
      'FERRY_IMAGE_CORRUPT',
      `block size ${bs}`,
    );
  }
  await expectFailure(
    patched(qemu, (b) => b.writeBigUInt64LE(2n ** 60n, metaItem(b, GUID_VIRTUAL_DISK_SIZE))),
    'FERRY_IMAGE_TOO_LARGE',
    'virtual size 2^60',
  );
  await expectFailure(
    patched(qemu, (b) => b.writeUInt32LE(1024, metaItem(b, GUID_LOGICAL_SECTOR_SIZE))),
    'FERRY_IMAGE_CORRUPT',
    'sector size 1024',
  );
  await expectFailure(
    patched(qemu, (b) => {
      b.writeUInt16LE(6, mdAt + 10);
      writeGuid(b, mdAt + 32 + 5 * 32, '0badc0de-0000-4000-8000-000000000001');
      b.writeUInt32LE(4, mdAt + 32 + 5 * 32 + 24); // IsRequired, no data
    }),
    'FERRY_IMAGE_UNSUPPORTED',
    'unknown required metadata',
  );
  // 64 TiB of 1 MiB blocks needs a 512 MiB BAT.
  const huge = patched(qemu, (b) => b.writeBigUInt64LE(64n << 40n, metaItem(b, GUID_VIRTUAL_DISK_SIZE)));
  await expectFailure(huge, 'FERRY_IMAGE_TOO_LARGE', 'BAT too large');
  // 256 GiB of 1 MiB blocks fits the cap (2 MiB of BAT) but not the 1 MiB BAT region.
  const small = patched(qemu, (b) => b.writeBigUInt64LE(256n << 30n, metaItem(b, GUID_VIRTUAL_DISK_SIZE)));
  await expectFailure(small, 'FERRY_IMAGE_CORRUPT', 'BAT region too small');
  // Declared -f vhdx on something else.
  const r = await run(Buffer.alloc(2 * MiB, 1), ['-f', 'vhdx']);
  assertCleanFailure(r, 'FERRY_IMAGE_FORMAT_MISMATCH');
});

test('hostile vhdx: BAT entries', async () => {
  await setup();
  const batAt = regionOffset(qemu, GUID_BAT_REGION);
  const entry = (i: number, state: number, offset: number) =>
    patched(qemu, (b) => setBatEntry(b.subarray(batAt), i, state, offset));
  await expectFailure(entry(0, PAYLOAD_FULLY_PRESENT, 1 << 30), 'FERRY_IMAGE_TRUNCATED', 'block past EOF');
  await expectFailure(
    entry(0, PAYLOAD_FULLY_PRESENT, 2 ** 43 * MiB),
    'FERRY_IMAGE_TRUNCATED',
    'block at 2^63',
  );
  await expectFailure(entry(1, PAYLOAD_FULLY_PRESENT, batAt), 'FERRY_IMAGE_CORRUPT', 'block over the BAT');
  await expectFailure(entry(1, PAYLOAD_FULLY_PRESENT, MiB), 'FERRY_IMAGE_CORRUPT', 'block over the log');
  await expectFailure(entry(1, PAYLOAD_FULLY_PRESENT, 0), 'FERRY_IMAGE_CORRUPT', 'block in the header');
  const first = Number(qemu.readBigUInt64LE(batAt) >> 20n) * MiB;
  await expectFailure(entry(3, PAYLOAD_FULLY_PRESENT, first), 'FERRY_IMAGE_CORRUPT', 'two blocks, one place');
  await expectFailure(entry(1, 4, 0), 'FERRY_IMAGE_CORRUPT', 'state 4');
  await expectFailure(
    entry(1, PAYLOAD_PARTIALLY_PRESENT, first),
    'FERRY_IMAGE_CORRUPT',
    'partial in dynamic',
  );
  await expectFailure(
    patched(qemu, (b) => b.writeUInt32LE(b.readUInt32LE(batAt) | 0x800, batAt)),
    'FERRY_IMAGE_CORRUPT',
    'reserved bits',
  );
});

test('hostile vhdx: truncated anywhere', async () => {
  await setup();
  const points = [
    8,
    100,
    64 * 1024,
    64 * 1024 + 4095,
    128 * 1024 + 5,
    192 * 1024 + 10,
    256 * 1024 + 100,
    1024 * 1024,
  ];
  for (let at = 2 * MiB; at < qemu.length; at += MiB) points.push(at + 4097);
  points.push(qemu.length - 1);
  for (const at of points) {
    const r = await run(qemu.subarray(0, at));
    assertCleanFailure(r);
    assert.match(r.stderr, /FERRY_IMAGE_(TRUNCATED|CORRUPT)/, `cut at ${at}: ${r.stderr}`);
    assert.ok(r.ms < 5000);
  }
});

const GUID = '5eed5eed-0000-4000-8000-00000000abcd';

/** The qemu image with `entries` (offset in log → entry) in its log and LogGuid set. */
function withLog(entries: Array<[number, Buffer]>, guid = GUID): Buffer {
  const out = Buffer.from(qemu);
  for (const [at, e] of entries) e.copy(out, MiB + at);
  setLogGuid(out, guid);
  return out;
}

function logEntry(seq: bigint, tail: number, descriptors: TestDescriptor[], flushed = qemu.length): Buffer {
  return buildLogEntry({
    sequence: seq,
    tail,
    logGuid: GUID,
    flushedFileOffset: flushed,
    lastFileOffset: qemu.length,
    descriptors,
  });
}

test('hostile vhdx: logs that cannot be replayed safely are refused', async () => {
  await setup();
  const batAt = regionOffset(qemu, GUID_BAT_REGION);
  const sector = Buffer.from(qemu.subarray(batAt, batAt + 4096));
  const ok = logEntry(1n, 0, [{ kind: 'data', fileOffset: batAt, data: sector }]);
  assert.equal((await run(withLog([[0, ok]]))).code, 0);
  await expectFailure(withLog([]), 'FERRY_IMAGE_CORRUPT', 'LogGuid set, empty log');
  const badCrc = Buffer.from(ok);
  flip(badCrc, 200);
  await expectFailure(withLog([[0, badCrc]]), 'FERRY_IMAGE_CORRUPT', 'only entry has a bad CRC');
  await expectFailure(
    withLog([[0, ok]], '5eed5eed-0000-4000-8000-0000000000ff'),
    'FERRY_IMAGE_CORRUPT',
    'other GUID',
  );
  const orphan = logEntry(5n, 64 * 1024, [{ kind: 'data', fileOffset: batAt, data: sector }]);
  await expectFailure(withLog([[0, orphan]]), 'FERRY_IMAGE_CORRUPT', 'tail outside the sequence');
  // seq 1 (whose tail names nothing) then seq 3 (tail → seq 1): a gap, so no complete sequence.
  const first = logEntry(1n, 64 * 1024, []);
  const gap = logEntry(3n, 0, []);
  await expectFailure(
    withLog([
      [0, first],
      [first.length, gap],
    ]),
    'FERRY_IMAGE_CORRUPT',
    'sequence gap',
  );
  // A stray later entry that does not continue the sequence does not stop its replay.
  assert.equal(
    (
      await run(
        withLog([
          [0, ok],
          [ok.length, gap],
        ]),
      )
    ).code,
    0,
  );
  const intoHeader = logEntry(1n, 0, [{ kind: 'zero', fileOffset: 64 * 1024, length: 4096 }]);
  await expectFailure(withLog([[0, intoHeader]]), 'FERRY_IMAGE_CORRUPT', 'writes the header');
  const intoLog = logEntry(1n, 0, [{ kind: 'zero', fileOffset: MiB, length: 4096 }]);
  await expectFailure(withLog([[0, intoLog]]), 'FERRY_IMAGE_CORRUPT', 'writes the log');
  const huge = logEntry(1n, 0, [{ kind: 'zero', fileOffset: 2 * MiB, length: 2 ** 62 }]);
  await expectFailure(withLog([[0, huge]]), 'FERRY_IMAGE_CORRUPT', 'zeroes 2^62 bytes');
  const truncated = logEntry(1n, 0, [], qemu.length + MiB);
  await expectFailure(withLog([[0, truncated]]), 'FERRY_IMAGE_TRUNCATED', 'FlushedFileOffset past EOF');
  // A log that zeroes the BAT region's sector: replayable, and the data disappears.
  const wipe = logEntry(1n, 0, [{ kind: 'zero', fileOffset: batAt, length: 4096 }]);
  const wiped = await run(withLog([[0, wipe]]));
  assert.equal(wiped.code, 0, wiped.stderr);
  assert.equal(
    wiped.stdout.split(/\s/)[0],
    createHash('sha256')
      .update(Buffer.alloc(8 * MiB))
      .digest('hex'),
  );
  await expectFailure(
    headers(qemu, (h) => h.writeUInt32LE(0x7ff00000, 68)),
    'FERRY_IMAGE_CORRUPT',
    'odd log length',
  );
  const bigLog = headers(qemu, (h) => {
    h.writeUInt32LE(1024 * MiB, 68);
    writeGuid(h, 48, GUID);
  });
  await expectFailure(bigLog, 'FERRY_IMAGE_TOO_LARGE', '1 GiB log');
  const farLog = headers(qemu, (h) => {
    h.writeBigUInt64LE(1n << 40n, 72);
    writeGuid(h, 48, GUID);
  });
  await expectFailure(farLog, 'FERRY_IMAGE_TRUNCATED', 'log past EOF');
  const logV1 = headers(qemu, (h) => {
    h.writeUInt16LE(1, 64);
    writeGuid(h, 48, GUID);
  });
  await expectFailure(logV1, 'FERRY_IMAGE_UNSUPPORTED', 'log version 1');
  // Every log sector forged to start a log-sized entry: bounded work, clean refusal.
  const forged = Buffer.from(qemu);
  for (let at = MiB; at < 2 * MiB; at += 4096) {
    ok.copy(forged, at, 0, 64);
    forged.writeUInt32LE(MiB, at + 8);
  }
  setLogGuid(forged, GUID);
  await expectFailure(forged, 'FERRY_IMAGE_CORRUPT', 'forged log');
});

const LINK = '{C0FFEE00-0000-4000-8000-000000000001}';

function child(
  pairs: ReadonlyArray<readonly [string, string]>,
  dataWriteGuid = 'c0ffee00-0000-4000-8000-000000000099',
): Buffer {
  return buildTestImage({ virtualSize: 4 * MiB, blockSize: MiB, parentLocator: pairs, dataWriteGuid }).bytes;
}

test('hostile vhdx: parent locators and parent chains', async () => {
  await setup();
  for (const path of [
    '..\\x.vhdx',
    '../x.vhdx',
    'C:\\x.vhdx',
    '/etc/passwd',
    'nbd://host/x',
    'json:{"file":"/etc/passwd"}',
    '\\\\?\\C:\\x.vhdx',
    '\\\\server\\share\\x.vhdx',
  ]) {
    await expectFailure(
      child([
        ['parent_linkage', LINK],
        ['relative_path', path],
      ]),
      'FERRY_REFERENCE_REFUSED',
      path,
    );
  }
  await expectFailure(
    child([
      ['parent_linkage', LINK],
      ['absolute_win32_path', '\\\\?\\D:\\vms\\base.vhdx'],
    ]),
    'FERRY_REFERENCE_REFUSED',
    'absolute_win32_path only',
  );
  await expectFailure(
    child([
      ['parent_linkage', LINK],
      ['relative_path', 'missing.vhdx'],
    ]),
    'FERRY_REFERENCE_NOT_FOUND',
    'missing',
  );
  await expectFailure(child([['relative_path', 'x.vhdx']]), 'FERRY_IMAGE_CORRUPT', 'no linkage');
  await expectFailure(child([['parent_linkage', LINK]]), 'FERRY_IMAGE_CORRUPT', 'no path');
  const longValue = 'a'.repeat(30000);
  await expectFailure(
    child([
      ['parent_linkage', LINK],
      ['relative_path', longValue],
    ]),
    'FERRY_IMAGE_CORRUPT',
    'path too long',
  );
  // Absurd counts and lengths inside the locator item.
  const img = child([
    ['parent_linkage', LINK],
    ['relative_path', 'p.vhdx'],
  ]);
  const pl = buildParentLocator([
    ['parent_linkage', LINK],
    ['relative_path', 'p.vhdx'],
  ]);
  const at = img.indexOf(pl);
  assert.ok(at > 0);
  await expectFailure(
    patched(img, (b) => b.writeUInt16LE(65535, at + 18)),
    'FERRY_IMAGE_TOO_LARGE',
    'kv count',
  );
  await expectFailure(
    patched(img, (b) => b.writeUInt16LE(4, at + 18)),
    'FERRY_IMAGE_CORRUPT',
    'kv past item',
  );
  await expectFailure(
    patched(img, (b) => b.writeUInt32LE(0xfffffff0, at + 20 + 12 + 4)),
    'FERRY_IMAGE_CORRUPT',
    'value offset',
  );
  await expectFailure(
    patched(img, (b) => b.writeUInt16LE(0xffff, at + 20 + 12 + 10)),
    'FERRY_IMAGE_CORRUPT',
    'value length',
  );

  // Loops: a → b → a, and a disk naming itself; identities match so only the loop check stops them.
  const a = 'a0a0a0a0-0000-4000-8000-000000000001';
  const b = 'b0b0b0b0-0000-4000-8000-000000000002';
  await writeFile(
    join(dir, 'loop-b.vhdx'),
    child(
      [
        ['parent_linkage', `{${a}}`],
        ['relative_path', 'loop-a.vhdx'],
      ],
      b,
    ),
  );
  await expectFailure(
    child(
      [
        ['parent_linkage', `{${b}}`],
        ['relative_path', 'loop-b.vhdx'],
      ],
      a,
    ),
    'FERRY_CHAIN_LOOP',
    'a→b→a',
    'loop-a.vhdx',
  );
  await expectFailure(
    child(
      [
        ['parent_linkage', `{${a}}`],
        ['relative_path', 'self.vhdx'],
      ],
      a,
    ),
    'FERRY_CHAIN_LOOP',
    'self',
    'self.vhdx',
  );
  // PARTIALLY_PRESENT without its sector bitmap.
  const partial = buildTestImage({
    virtualSize: 4 * MiB,
    blockSize: MiB,
    parentLocator: [
      ['parent_linkage', LINK],
      ['relative_path', 'p.vhdx'],
    ],
    blocks: new Map([[0, { state: PAYLOAD_PARTIALLY_PRESENT, sectors: [1] }]]),
  });
  const noBitmap = patched(partial.bytes, (buf) => setBatEntry(buf.subarray(partial.batOffset), 4096, 0, 0));
  await expectFailure(noBitmap, 'FERRY_IMAGE_CORRUPT', 'partial without bitmap');
});
