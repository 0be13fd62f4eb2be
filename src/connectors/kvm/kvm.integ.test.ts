import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { qemuImg, qemuIo, sha256File, tempDir } from '../../../test/helpers/qemu.js';
import { startPausedVm } from '../../../test/helpers/kvm.js';
import {
  CONTEXT_BASE_ALLOCATION,
  NbdClient,
  dirtyBitmapContext,
  queryExtents,
  toDirtyExtents,
} from './nbd/index.js';
import {
  QmpClient,
  actions,
  blockDirtyBitmapAdd,
  blockDirtyBitmapDisable,
  blockDirtyBitmapRemove,
  blockExportAddNbd,
  blockExportDel,
  blockdevAdd,
  blockdevDel,
  humanMonitorCommand,
  jobCancel,
  jobDismiss,
  nbdServerStart,
  nbdServerStop,
  queryBlock,
  queryBlockExports,
  queryCpusFast,
  queryJobs,
  queryMemorySizeSummary,
  queryName,
  queryNamedBlockNodes,
  queryStatus,
  queryUuid,
  transaction,
} from './qmp/index.js';
import { rejectsWith } from '../../../test/helpers/errors.js';

const MiB = 1024 * 1024;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(c: NbdClient): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let at = 0; at < c.size; at += 16 * MiB) parts.push(await c.read(at, Math.min(16 * MiB, c.size - at)));
  return Buffer.concat(parts);
}

test('paused QEMU: QMP queries, coded errors, dirty bitmap, qemu-io write, NBD export read back with the bitmap; fleecing', async () => {
  const dir = await tempDir('ferry-kvm-');
  const image = join(dir, 'disk.qcow2');
  await qemuImg('create', '-f', 'qcow2', image, '64M');
  await qemuIo(image, 'qcow2', 'write -P 0x11 0 256k');
  const expected = Buffer.alloc(64 * MiB);
  expected.fill(0x11, 0, 256 * 1024);

  const vm = await startPausedVm(dir, image);
  let q: QmpClient | undefined;
  let nbd: NbdClient | undefined;
  try {
    q = await QmpClient.connect({ path: vm.qmp });
    assert.ok(q.version.major >= 5, `QEMU ${q.version.major}.${q.version.minor}`);

    // Facts the connector reports.
    const status = await queryStatus(q);
    assert.equal(status.running, false);
    assert.equal(status.status, 'prelaunch');
    assert.equal(await queryName(q), 'ferry-test-vm');
    assert.equal(await queryUuid(q), '6f1c2b6e-9d2a-4c1e-9d55-0c7a1f3e2b10');
    assert.equal((await queryCpusFast(q)).length, 1);
    assert.equal((await queryMemorySizeSummary(q))['base-memory'], 128 * MiB);
    const blocks = await queryBlock(q);
    const drive = blocks.find((b) => b.device === 'drive0');
    assert.equal(drive?.inserted?.['node-name'], 'disk0');
    assert.equal(drive?.inserted?.image['virtual-size'], 64 * MiB);
    assert.equal(drive?.inserted?.image.format, 'qcow2');
    const nodes = await queryNamedBlockNodes(q);
    assert.ok(nodes.some((n) => n['node-name'] === 'disk0' && n.drv === 'qcow2'));

    // QEMU's errors become coded errors carrying its class and description.
    const e1 = await rejectsWith(q.execute('no-such-command'), 'FERRY_QMP_COMMAND_FAILED');
    assert.equal(e1.details.class, 'CommandNotFound');
    const e2 = await rejectsWith(
      blockDirtyBitmapAdd(q, { node: 'nonexistent', name: 'x' }),
      'FERRY_QMP_COMMAND_FAILED',
    );
    assert.equal(e2.details.class, 'GenericError');
    assert.match(String(e2.details.desc), /nonexistent/);

    // A bitmap, then a guest-like write through the drive (HMP qemu-io).
    await blockDirtyBitmapAdd(q, { node: 'disk0', name: 'b0' });
    await rejectsWith(blockDirtyBitmapAdd(q, { node: 'disk0', name: 'b0' }), 'FERRY_QMP_COMMAND_FAILED');
    // qemu-io prints its progress on QEMU's stdout; the monitor returns only errors.
    assert.equal(await humanMonitorCommand(q, 'qemu-io drive0 "write -P 0x55 1M 64k"'), '');
    assert.match(
      await humanMonitorCommand(q, 'qemu-io nodrive "write 0 512"'),
      /not found|no such|cannot find/i,
    );
    expected.fill(0x55, 1 * MiB, 1 * MiB + 65536);
    const bm = (await queryBlock(q)).find((b) => b.device === 'drive0')?.inserted?.['dirty-bitmaps'];
    assert.deepEqual(
      bm?.map((b) => [b.name, b.count]),
      [['b0', 65536]],
    );

    // Export the node with its bitmap over QEMU's NBD server, read it back with Ferry's client.
    // QEMU exports only a bitmap that stopped recording (libvirt exports a disabled copy).
    await blockDirtyBitmapDisable(q, { node: 'disk0', name: 'b0' });
    const sock = join(dir, 'nbd.sock');
    await nbdServerStart(q, { type: 'unix', path: sock });
    await blockExportAddNbd(q, { id: 'e0', 'node-name': 'disk0', name: 'disk0', bitmaps: ['b0'] });
    assert.deepEqual(
      (await queryBlockExports(q)).map((x) => [x.id, x['node-name']]),
      [['e0', 'disk0']],
    );
    nbd = await NbdClient.connect(
      { path: sock },
      { exportName: 'disk0', metaContexts: [CONTEXT_BASE_ALLOCATION, dirtyBitmapContext('b0')] },
    );
    const dirty = toDirtyExtents(await queryExtents(nbd, dirtyBitmapContext('b0'), 0, nbd.size));
    assert.deepEqual(
      dirty.map((d) => [d.offset, d.length, d.kind]),
      [
        [0, 1 * MiB, 'unchanged'],
        [1 * MiB, 65536, 'data'],
        [1 * MiB + 65536, 64 * MiB - 1 * MiB - 65536, 'unchanged'],
      ],
    );
    assert.ok((await nbd.read(1 * MiB, 65536)).equals(Buffer.alloc(65536, 0x55)));
    const whole = await readAll(nbd);
    assert.ok(whole.equals(expected));
    // The file itself as a second oracle (flushed; -U because the VM holds the image lock).
    await humanMonitorCommand(q, 'qemu-io drive0 "flush"');
    const raw = join(dir, 'oracle.raw');
    await qemuImg('convert', '-U', '-f', 'qcow2', '-O', 'raw', image, raw);
    assert.equal(sha(whole), await sha256File(raw));
    await nbd.close();
    nbd = undefined;
    await blockExportDel(q, 'e0');

    // Fleecing: an overlay backed by the disk, a sync=none backup into it started together
    // with a new bitmap, exported; guest writes after that point must not show in the export.
    const fleece = join(dir, 'fleece.qcow2');
    await qemuImg('create', '-f', 'qcow2', '-F', 'qcow2', '-b', image, fleece, '64M');
    await blockdevAdd(q, {
      driver: 'qcow2',
      'node-name': 'fleece0',
      file: { driver: 'file', filename: fleece },
      backing: 'disk0',
    });
    await transaction(q, [
      actions.bitmapAdd({ node: 'disk0', name: 'b1' }),
      actions.blockdevBackup({
        'job-id': 'fleecing',
        device: 'disk0',
        target: 'fleece0',
        sync: 'none',
        'auto-dismiss': false,
      }),
    ]);
    assert.equal((await queryJobs(q)).find((j) => j.id === 'fleecing')?.type, 'backup');
    await blockExportAddNbd(q, { id: 'e1', 'node-name': 'fleece0', name: 'snap' });
    assert.equal(await humanMonitorCommand(q, 'qemu-io drive0 "write -P 0x99 0 128k"'), '');
    nbd = await NbdClient.connect({ path: sock }, { exportName: 'snap' });
    assert.ok((await readAll(nbd)).equals(expected), 'the fleecing export shows the disk as it was');
    await nbd.close();
    nbd = undefined;

    await blockExportDel(q, 'e1');
    const mark = q.eventMark;
    await jobCancel(q, 'fleecing');
    await q.waitForEvent(
      (e) => e.event === 'JOB_STATUS_CHANGE' && e.data.id === 'fleecing' && e.data.status === 'concluded',
      {
        after: mark,
        timeoutMs: 20_000,
      },
    );
    await jobDismiss(q, 'fleecing');
    assert.deepEqual(await queryJobs(q), []);
    // The export of fleece0 goes away asynchronously; retry the delete briefly.
    for (let i = 0; ; i++) {
      try {
        await blockdevDel(q, 'fleece0');
        break;
      } catch (err) {
        if (i > 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await blockDirtyBitmapRemove(q, { node: 'disk0', name: 'b1' });
    await blockDirtyBitmapRemove(q, { node: 'disk0', name: 'b0' });
    await nbdServerStop(q);

    // QEMU going away: pending and later commands fail as retryable disconnects.
    vm.proc.kill('SIGKILL');
    const e3 = await rejectsWith(q.execute('query-status'), 'FERRY_QMP_DISCONNECTED');
    assert.equal(e3.retryable, true);
  } finally {
    await nbd?.close().catch(() => {});
    await q?.close().catch(() => {});
    await vm.stop();
  }
});
