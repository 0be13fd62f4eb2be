/**
 * End to end, launch host core (issue 7): a real bootable disk (../shared/tools/boot) is
 * written into a store image on a local repository, then launched without copying it —
 * NBD export + qcow2 overlay + qemu-system-x86_64 (TCG, 256 MiB) — and must print its boot
 * marker on the serial console, on each disk bus. A write made while it runs lands in the
 * overlay; after terminate() no QEMU process, socket, overlay or directory is left and the
 * image's bytes are unchanged. One QEMU at a time (the test host has two cores).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { checksumDisk, openDisk } from '../../src/disk/index.js';
import { launchInstance, type DiskBus, type Instance } from '../../src/launch/index.js';
import { LocalBackend, openImageDisk, RawMasterKey, Repository, writeImage } from '../../src/store/index.js';
import { qemuIo, tempDir } from '../helpers/qemu.js';
import { bootTools } from '../helpers/boot.js';
import { alive, missing } from '../helpers/leftovers.js';

const run = promisify(execFile);
const BOOT = bootTools();
const MARKER = 'launch-instance-e2e';
// TCG on a loaded two-core machine (CI runs two test files at once) boots in 10–120 s.
const BOOT_TIMEOUT_MS = 300_000;

let work: string;
let repo: Repository;
let imageId: string;
let sourceSha: string;
/** Every instance launched, terminated in after() whatever happened. */
const instances: Instance[] = [];

before(async () => {
  work = await tempDir('ferry-launch-instance-');
  const raw = join(work, 'boot.raw');
  await run('bash', [join(BOOT, 'make-bootable.sh'), raw, MARKER], { maxBuffer: 1 << 24 });
  sourceSha = createHash('sha256')
    .update(await readFile(raw))
    .digest('hex');
  repo = await Repository.init(new LocalBackend(join(work, 'repo')), RawMasterKey.generate().master);
  const src = await openDisk(raw);
  try {
    imageId = (await writeImage(repo, { name: 'boot', disks: [{ name: 'boot.raw', disk: src }] })).id;
  } finally {
    await src.close();
  }
});

after(async () => {
  await Promise.allSettled(instances.map((i) => i.terminate({ timeoutMs: 0 })));
});

/** The image's bytes, hashed through a fresh read view. */
async function imageSha(): Promise<string> {
  const view = await openImageDisk(repo, imageId, 0);
  try {
    return await checksumDisk(view.disk);
  } finally {
    await view.disk.close();
  }
}

test('a store image boots in place (virtio, TCG, 256 MiB); terminate leaves nothing; the image is unchanged', async () => {
  const view = await openImageDisk(repo, imageId, 0);
  const dir = join(work, 'i-virtio');
  const inst = await launchInstance({ dir, name: 'boot-virtio', disk: view.disk, type: 'custom:1x256' });
  instances.push(inst);
  assert.equal(inst.bus, 'virtio');
  assert.ok(inst.timings.prepareMs < 2000, `prepare took ${inst.timings.prepareMs} ms`);
  const files = [inst.overlays[0]!, inst.nbdSocket, inst.qmpSocket, inst.consoleLog, inst.pidFile];
  for (const f of files) assert.ok(!(await missing(f)), `${f} exists while the instance runs`);
  // A write while the guest boots, into the unused gap between the MBR and the partition
  // (sector 1024): it must land in the overlay, never in the image.
  const out = await inst.qmp('human-monitor-command', {
    'command-line': 'qemu-io disk0 "write -P 0xcd 512k 4k"',
  });
  assert.equal(out, '');

  const text = await inst.waitForConsole(`FERRY-BOOT-MARKER: ${MARKER}`, { timeoutMs: BOOT_TIMEOUT_MS });
  assert.ok(text, `no boot marker; console:\n${(await inst.consoleText()).slice(-3000)}`);
  assert.ok(inst.nbdStats.bytesRead > 1024 * 1024, 'the guest read its kernel through the NBD export');
  // The guest powers off after printing the marker; QEMU exits with it.
  await Promise.race([inst.exited, new Promise((r) => setTimeout(r, 60_000))]);
  assert.equal(inst.state, 'stopped');

  // QEMU has exited; the overlay (read through the still-running export) holds the write.
  await qemuIo(inst.overlays[0]!, 'qcow2', 'read -P 0xcd 512k 4k');

  await inst.terminate();
  assert.equal(inst.state, 'terminated');
  assert.ok(!alive(inst.pid), 'no QEMU process left');
  for (const f of [...files, dir]) assert.ok(await missing(f), `${f} left behind`);
  assert.equal(await imageSha(), sourceSha, 'the image is unchanged');
});

for (const bus of ['ide', 'sata', 'scsi'] as DiskBus[]) {
  test(`the same image boots on the ${bus} bus`, async () => {
    const view = await openImageDisk(repo, imageId, 0);
    const dir = join(work, `i-${bus}`);
    const inst = await launchInstance({
      dir,
      name: `boot-${bus}`,
      disk: view.disk,
      type: 'custom:1x256',
      bus,
    });
    instances.push(inst);
    const text = await inst.waitForConsole(`FERRY-BOOT-MARKER: ${MARKER}`, { timeoutMs: BOOT_TIMEOUT_MS });
    assert.ok(text, `no boot marker on ${bus}; console:\n${(await inst.consoleText()).slice(-3000)}`);
    await inst.terminate({ timeoutMs: 30_000 });
    assert.ok(!alive(inst.pid));
    assert.ok(await missing(dir));
  });
}
