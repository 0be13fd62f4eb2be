import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeReference } from './resolver.js';
import { FerryError } from '../../errors/index.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(FerryError.is(e));
    return e.code;
  }
  return 'none';
}

test('relative names inside the directory are accepted and normalised', () => {
  assert.equal(normalizeReference('base.qcow2'), 'base.qcow2');
  assert.equal(normalizeReference('.\\parent.vhd'), './parent.vhd');
  assert.equal(normalizeReference('sub/disk-s001.vmdk'), 'sub/disk-s001.vmdk');
});

test('absolute paths, "..", protocols and json: are refused by default', () => {
  for (const name of [
    '/etc/passwd',
    '../x.qcow2',
    'a/../../x',
    'json:{"file":{"driver":"file","filename":"/etc/shadow"}}',
    'nbd://127.0.0.1:10809/x',
    'http://example.invalid/x',
    'file:/etc/passwd',
    'C:\\Windows\\disk.vhd',
    '\\\\server\\share\\disk.vhd',
  ]) {
    assert.equal(
      code(() => normalizeReference(name)),
      'FERRY_REFERENCE_REFUSED',
      name,
    );
  }
});

test('the allow option lifts the directory rule but never the protocol rule', () => {
  assert.equal(normalizeReference('/srv/base.img', { allowExternal: true }), '/srv/base.img');
  assert.equal(normalizeReference('../base.img', { allowExternal: true }), '../base.img');
  assert.equal(
    code(() => normalizeReference('json:{}', { allowExternal: true })),
    'FERRY_REFERENCE_REFUSED',
  );
  assert.equal(
    code(() => normalizeReference('nbd:host:1', { allowExternal: true })),
    'FERRY_REFERENCE_REFUSED',
  );
});

test('empty, NUL-containing and over-long names are corrupt', () => {
  assert.equal(
    code(() => normalizeReference('')),
    'FERRY_IMAGE_CORRUPT',
  );
  assert.equal(
    code(() => normalizeReference('a\0b')),
    'FERRY_IMAGE_CORRUPT',
  );
  assert.equal(
    code(() => normalizeReference('a'.repeat(5000))),
    'FERRY_IMAGE_CORRUPT',
  );
});
