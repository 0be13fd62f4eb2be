/**
 * Materialising a running instance against real QEMU (TCG): the image's blocks are
 * streamed into the overlay while QEMU runs, the backing is dropped from the overlay's
 * header, the image export closes, and the overlay alone holds the image's data plus the
 * guest's writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { qemuImg, qemuIo, tempDir } from '../../../test/helpers/qemu.js';
import { storeImage } from '../../../test/helpers/launch.js';
import { missing } from '../../../test/helpers/leftovers.js';
import { launchInstance } from '../index.js';

const MiB = 1024 * 1024;

test('materialize streams the image into the overlay; the instance then stands alone', async () => {
  const data = Buffer.alloc(32 * MiB);
  for (let i = 0; i < data.length; i += MiB) data.fill((i / MiB) % 251, i, i + MiB / 2); // half data, half zero
  const img = await storeImage(data);
  const dir = join(await tempDir('ferry-materialize-'), 'i');
  const inst = await launchInstance({ dir, name: 'mat', disk: await img.open(), type: 'custom:1x128' });
  try {
    const hmp = (line: string) => inst.qmp('human-monitor-command', { 'command-line': line });
    assert.equal(await hmp(`qemu-io disk0 "write -P 0xee ${3 * MiB} 64k"`), '');
    const seen: number[] = [];
    await inst.materialize({ onProgress: (p) => seen.push(p.done) });
    assert.ok(inst.materialized);
    assert.equal(inst.state, 'running');
    assert.ok(seen.length > 0);
    assert.ok(await stat(join(dir, 'materialized')));

    const info = JSON.parse(await qemuImg('info', '-U', '--output=json', inst.overlays[0]!)) as Record<
      string,
      unknown
    >;
    assert.equal(info['backing-filename'], undefined, 'no backing file left in the overlay');
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = connect(inst.nbdSocket, () => resolve(s.destroy()));
        s.once('error', reject);
      }),
      'the image export is closed',
    );
    await inst.materialize(); // idempotent
    await inst.stop({ timeoutMs: 0 });
    // The overlay alone: the image's data, the guest's write, zeros where the image had none.
    await qemuIo(
      inst.overlays[0]!,
      'qcow2',
      `read -P 0 0 ${MiB / 2}`,
      `read -P 1 ${MiB} ${MiB / 2}`,
      `read -P 0xee ${3 * MiB} 64k`,
      `read -P 3 ${3 * MiB + 65536} ${MiB / 2 - 65536}`,
      `read -P 0 ${3 * MiB + MiB / 2} ${MiB / 2}`,
      `read -P 31 ${31 * MiB} ${MiB / 2}`,
    );
    // It boots again without the image.
    await inst.start();
    assert.equal(inst.state, 'running');
  } finally {
    await inst.terminate({ timeoutMs: 0 });
  }
  assert.ok(await missing(dir));
});
