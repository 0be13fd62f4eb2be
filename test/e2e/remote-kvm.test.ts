/**
 * End to end, a running QEMU VM replicated through a REMOTE connector (`ferry connector
 * --qmp-dir` over the mutual-TLS link, docs/connector-protocol.md): the first run reads in
 * full, the second reads only what the guest changed (the dirty bitmap, across the link),
 * and when the connector is killed (-9) during a run and started again the run ends
 * cleanly, nothing of Ferry's stays in QEMU, and the next run is exact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/qemu.js';
import { checkpointOf, FerryHost, Guest, MiB, seeded, sha256 } from '../helpers/kvm-e2e.js';
import { enrolmentToken, startConnector, type ConnectorProcess } from '../helpers/remote-connector.js';
import { until } from '../helpers/wait.js';

const bytesRead = (msg: string | undefined) =>
  Number(/(\d+) bytes read from the source/.exec(msg ?? '')?.[1]);

test('a QEMU VM through a remote connector: full, then changed blocks only; connector killed mid-run: clean, next run exact', async () => {
  const dir = await tempDir('ferry-remote-kvm-');
  const qmpDir = join(dir, 'qmp');
  await mkdir(qmpDir);
  const host = new FerryHost(join(dir, 'data'), qmpDir, true);
  const rand = seeded(4242);
  let guest: Guest | undefined;
  let conn: ConnectorProcess | undefined;
  const state = join(dir, 'connector');
  const start = (token?: string) => startConnector(host.server, state, ['--qmp-dir', qmpDir], token);
  try {
    await host.start();
    guest = await Guest.create(dir, qmpDir, 'rvm', '5f0c6a6e-8d1b-4f53-9a39-2c6f4d1e0a11', rand, [
      [0, 8 * MiB],
      [40 * MiB, 8 * MiB],
    ]);
    conn = start(await enrolmentToken(host.server));
    await until('the link', () => conn!.out().includes('connected to'));
    const job = await host.createJob('rvm');

    const run1 = await host.waitRun(job, await host.startRun(job));
    assert.equal(run1.state, 'COMPLETED', run1.statusMessage);
    assert.match(run1.statusMessage ?? '', /full read/);
    assert.equal(await host.imageSha(run1.amiId!, dir), sha256(guest.model));

    await guest.write(rand, 20 * MiB, MiB);
    const run2 = await host.waitRun(job, await host.startRun(job));
    assert.equal(run2.state, 'COMPLETED', run2.statusMessage);
    assert.match(run2.statusMessage ?? '', /incremental/);
    const read = bytesRead(run2.statusMessage);
    assert.ok(read >= MiB && read <= 2 * MiB, `the incremental run read ${read} bytes for 1 MiB changed`);
    assert.equal(await host.imageSha(run2.amiId!, dir), sha256(guest.model));
    await guest.assertClean(checkpointOf(run2.replicationRunId!), (m) => m);

    // The connector dies during a run (enough change that the run reads for a while).
    for (let i = 0; i < 6; i++) await guest.write(rand, (8 + i * 4) * MiB, 4 * MiB);
    const runId = await host.startRun(job);
    await host.waitRun(job, runId, (r) => r.state === 'ACTIVE' || r.state === 'COMPLETED', 60_000, 20);
    conn.child.kill('SIGKILL');
    await conn.exited;
    conn = start();
    const run3 = await host.waitRun(job, runId, undefined, 180_000);
    process.stderr.write(`remote kvm: connector killed mid-run: ${run3.state} — ${run3.statusMessage}\n`);
    assert.ok(['COMPLETED', 'FAILED'].includes(run3.state!));
    if (run3.state === 'FAILED') assert.match(run3.statusMessage ?? '', /^FERRY_[A-Z_]+: /);
    else assert.equal(await host.imageSha(run3.amiId!, dir), sha256(guest.model));
    const last = run3.state === 'COMPLETED' ? run3 : run2;
    await guest.assertClean(checkpointOf(last.replicationRunId!), (m) => m);

    await guest.write(rand, 60 * MiB, MiB);
    const run4 = await host.waitRun(job, await host.startRun(job));
    assert.equal(run4.state, 'COMPLETED', run4.statusMessage);
    assert.equal(await host.imageSha(run4.amiId!, dir), sha256(guest.model));
    assert.equal(await guest.oracleSha(), sha256(guest.model));
    await guest.assertClean(checkpointOf(run4.replicationRunId!), (m) => m);
  } catch (err) {
    process.stderr.write(`\nserver logs:\n${host.logs()}\nconnector:\n${conn?.out()}${conn?.err()}\n`);
    throw err;
  } finally {
    conn?.child.kill('SIGKILL');
    await host.stopAll();
    await guest?.vm.stop();
  }
});
