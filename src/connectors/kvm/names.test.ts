import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../errors/index.js';
import {
  checkCheckpoint,
  keyOfSnapshotId,
  keyOfStateFile,
  runKey,
  snapshotNames,
  vmKey,
  vmPaths,
} from './names.js';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return FerryError.is(err) ? err.code : String(err);
  }
  return 'no error';
};

test('run keys: safe ids pass unchanged; others are cleaned and made unique with a hash', () => {
  assert.equal(runKey('sms-r-0123456789abcdef0'), 'sms-r-0123456789abcdef0');
  const a = runKey('run/1');
  const b = runKey('run:1');
  assert.match(a, /^run-1-[0-9a-f]{8}$/);
  assert.notEqual(a, b, 'two ids that clean to the same text keep different keys');
  const long = runKey('x'.repeat(200));
  assert.ok(long.length <= 48 && /^[A-Za-z0-9-]+$/.test(long));
  assert.notEqual(runKey('x'.repeat(200)), runKey('x'.repeat(201)));
  assert.equal(
    code(() => runKey('')),
    'FERRY_INVALID_ARGUMENT',
  );
  assert.equal(runKey('run-1'), runKey('run-1'), 'deterministic');
});

test('snapshot names: QEMU limits hold and each snapshot owns only its own things', () => {
  for (const id of ['r', 'sms-r-0123456789abcdef0', 'y'.repeat(300), 'a b/c']) {
    const n = snapshotNames(runKey(id));
    assert.ok(n.fleeceNode(255).length <= 31, n.fleeceNode(255));
    assert.match(n.fleeceNode(0), /^ferry-[A-Za-z0-9-]+-f0$/);
    assert.ok(n.ownsNode(n.fleeceNode(7)) && n.ownsExport(n.exportId(7)) && n.ownsJob(n.jobId(7)));
    assert.equal(n.snapshotId, n.bitmap);
    assert.equal(keyOfSnapshotId(n.snapshotId), n.key);
  }
  const one = snapshotNames('run-1');
  const ten = snapshotNames('run-10');
  assert.equal(one.exportId(0), 'ferry-run-1-d0');
  assert.equal(one.jobId(2), 'ferry-run-1-j2');
  assert.equal(one.fleeceNode(1), 'ferry-run-1-f1');
  assert.ok(!one.ownsExport(ten.exportId(0)) && !ten.ownsExport(one.exportId(0)));
  assert.ok(!one.ownsNode(ten.fleeceNode(0)) && !one.ownsJob(ten.jobId(0)));
  assert.ok(!snapshotNames('a').ownsExport(snapshotNames('a-d1').exportId(0)));
  assert.ok(!one.ownsExport('ferry-run-1-d') && !one.ownsExport('xferry-run-1-d0'));
  assert.equal(
    code(() => snapshotNames('bad key')),
    'FERRY_INVALID_ARGUMENT',
  );
});

test('checkpoints and snapshot ids: only names this connector made reach QEMU', () => {
  assert.equal(checkCheckpoint('ferry-run-1'), 'ferry-run-1');
  for (const bad of ['run-1', 'ferry-', 'ferry-a;b', 'ferry-a"b', `ferry-${'a'.repeat(65)}`]) {
    assert.equal(
      code(() => checkCheckpoint(bad)),
      'FERRY_INVALID_ARGUMENT',
      bad,
    );
  }
  assert.equal(keyOfSnapshotId('snap-1'), undefined);
});

test('state files: run key of scratch images and records; paths; socket length limit', () => {
  assert.equal(keyOfStateFile('run-1-0.qcow2'), 'run-1');
  assert.equal(keyOfStateFile('run-1-12.qcow2'), 'run-1');
  assert.equal(keyOfStateFile('run-1.json'), 'run-1');
  assert.equal(keyOfStateFile('run-1.json.tmp'), 'run-1');
  assert.equal(keyOfStateFile('notes.txt'), undefined);
  assert.equal(keyOfStateFile('.qcow2'), undefined);
  assert.equal(vmKey('6f1c2b6e-9d2a-4c1e-9d55-0c7a1f3e2b10'), '6f1c2b6e-9d2a-4c1e-9d55-0c7a1f3e2b10');
  assert.match(vmKey('../etc'), /^---etc-[0-9a-f]{8}$/);
  const p = vmPaths('/var/lib/ferry/kvm', 'web-1');
  assert.equal(p.dir, '/var/lib/ferry/kvm/web-1');
  assert.equal(p.nbdSocket, '/var/lib/ferry/kvm/web-1.nbd');
  assert.equal(p.scratch('run-1', 2), '/var/lib/ferry/kvm/web-1/run-1-2.qcow2');
  assert.equal(p.record('run-1'), '/var/lib/ferry/kvm/web-1/run-1.json');
  assert.equal(
    code(() => vmPaths(`/${'d'.repeat(80)}`, 'a'.repeat(36))),
    'FERRY_INVALID_ARGUMENT',
  );
});
