/**
 * The NBD server against the oracle: qemu-img info/compare/convert/map and qemu-io read a
 * store image through `nbd+unix:///NAME?socket=SOCK` and must see exactly the source bytes
 * (and its zero ranges as zero), while writes are refused.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Disk } from '../../disk/index.js';
import { qemuImg, tempDir } from '../../../test/helpers/qemu.js';
import { storeImage } from '../../../test/helpers/launch.js';
import { mixedDisk } from '../../../test/store/helpers.js';
import { NbdServer, type NbdServerEvent } from '../index.js';

const run = promisify(execFile);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let dir: string;
let source: Buffer;
let sourcePath: string;
let disks: Disk[] = [];
let server: NbdServer;
const events: NbdServerEvent[] = [];

before(async () => {
  dir = await tempDir('ferry-nbd-server-');
  // Random, zero and text regions, zero blocks inside data, and a size that is not a
  // multiple of the 4 KiB block (the store pads to 512).
  source = mixedDisk(6 * 1024 * 1024 + 3 * 4096 + 512, 3);
  sourcePath = join(dir, 'source.raw');
  await writeFile(sourcePath, source);
  const img = await storeImage(source);
  const small = await storeImage(Buffer.from('second export\n'.repeat(100)));
  disks = [await img.open(), await small.open()];
  server = await NbdServer.listen({
    path: join(dir, 'nbd.sock'),
    exports: [
      { name: 'disk0', disk: disks[0]!, description: 'the mixed disk' },
      { name: 'disk1', disk: disks[1]! },
    ],
    onEvent: (e) => events.push(e),
  });
});

after(async () => {
  await server?.close();
  await Promise.all(disks.map((d) => d.close()));
});

test('qemu-img info sees a raw disk of the image size', async () => {
  const info = JSON.parse(await qemuImg('info', '--output=json', server.uri('disk0'))) as Record<
    string,
    unknown
  >;
  assert.equal(info['format'], 'raw');
  assert.equal(info['virtual-size'], disks[0]!.virtualSize);
});

test('qemu-img compare: the export is identical to the source', async () => {
  const out = await qemuImg('compare', '-f', 'raw', '-F', 'raw', sourcePath, server.uri('disk0'));
  assert.match(out, /Images are identical/);
});

test('qemu-img convert copies exactly the source bytes (both exports, one socket)', async () => {
  const out = join(dir, 'copy.raw');
  await qemuImg('convert', '-f', 'raw', '-O', 'raw', server.uri('disk0'), out);
  const copy = await readFile(out);
  const padded = Buffer.concat([source, Buffer.alloc(disks[0]!.virtualSize - source.length)]);
  assert.equal(sha(copy), sha(padded));
  const out1 = join(dir, 'copy1.raw');
  await qemuImg('convert', '-f', 'raw', '-O', 'raw', server.uri('disk1'), out1);
  assert.match((await readFile(out1)).toString('utf8'), /^second export\n/);
});

test('qemu-img map reports the zero ranges of the image as zero (base:allocation)', async () => {
  const map = JSON.parse(await qemuImg('map', '--output=json', '-f', 'raw', server.uri('disk0'))) as {
    start: number;
    length: number;
    zero: boolean;
    data: boolean;
  }[];
  let zeroBytes = 0;
  for (const m of map) if (m.zero && !m.data) zeroBytes += m.length;
  let expected = 0;
  for await (const e of disks[0]!.map()) if (e.kind === 'zero') expected += e.length;
  assert.ok(expected > 0);
  assert.equal(zeroBytes, expected);
});

test('qemu-io -r reads patterns at unaligned offsets; writes are refused', async () => {
  const uri = server.uri('disk0');
  const zeroAt = source.indexOf(Buffer.alloc(65536));
  assert.ok(zeroAt >= 0);
  const { stdout } = await run('qemu-io', ['-r', '-f', 'raw', '-c', `read -P 0 ${zeroAt} 65536`, uri]);
  assert.match(stdout, /read 65536\/65536 bytes/);
  const off = 1_000_003;
  const dump = await run('qemu-io', ['-r', '-f', 'raw', '-c', `read -v ${off} 16`, uri]);
  const hex = [...source.subarray(off, off + 16)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  assert.ok(dump.stdout.includes(hex), `${dump.stdout} lacks ${hex}`);
  // Without -r qemu-io opens read-write and the read-only export makes it fail.
  await assert.rejects(run('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 4096', uri]));
});

test('an unknown export name is refused and the server keeps serving', async () => {
  await assert.rejects(qemuImg('info', server.uri('nope')), /nope|export/i);
  const out = await qemuImg('compare', '-f', 'raw', '-F', 'raw', sourcePath, server.uri('disk0'));
  assert.match(out, /Images are identical/);
  assert.ok(server.stats.bytesRead > 0);
  assert.ok(events.some((e) => e.type === 'connected'));
});
