import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FerryError, ImageCorruptError, registeredErrors, toFerryError, ERROR_KINDS } from './index.js';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

test('every registered code is documented in docs/errors.md with its kind and retryable flag', () => {
  for (const spec of registeredErrors()) {
    const section = new RegExp(
      `^## ${spec.code}\\n+kind: \`${spec.kind}\` · retryable: \`${spec.retryable}\``,
      'm',
    );
    assert.match(doc, section, `${spec.code} missing or out of date in docs/errors.md`);
  }
});

test('docs/errors.md documents no code that the registry lacks', () => {
  const known = new Set(registeredErrors().map((s) => s.code));
  const documented = [...doc.matchAll(/^## (FERRY_[A-Z0-9_]+)$/gm)].map((m) => m[1]);
  assert.ok(documented.length > 0);
  for (const code of documented)
    assert.ok(known.has(code as string), `${code} documented but not registered`);
});

test('errors carry code, kind, retryable and a copy of their details, and survive JSON', () => {
  const given = { format: 'qcow2', field: 'l1_table_offset' };
  const e = new ImageCorruptError('bad L1', given);
  assert.ok(FerryError.is(e));
  assert.equal(e.code, 'FERRY_IMAGE_CORRUPT');
  assert.equal(e.kind, 'corrupt');
  assert.equal(e.retryable, false);
  assert.notEqual(e.details, given, 'the caller keeps its object');
  assert.deepEqual(JSON.parse(JSON.stringify(e)).details, { format: 'qcow2', field: 'l1_table_offset' });
});

test('unsupported, corrupt and too-large are three distinct kinds', () => {
  const kinds = new Set(
    registeredErrors()
      .filter((s) => s.code.startsWith('FERRY_IMAGE_'))
      .map((s) => s.kind),
  );
  for (const k of ['unsupported', 'corrupt', 'too-large'] as const) assert.ok(kinds.has(k), k);
  assert.ok(registeredErrors().every((s) => (ERROR_KINDS as readonly string[]).includes(s.kind)));
});

test('system errors become coded errors', () => {
  const enoent = Object.assign(new Error('x'), { code: 'ENOENT', path: '/nope' });
  assert.equal(toFerryError(enoent).code, 'FERRY_FILE_NOT_FOUND');
  const eio = Object.assign(new Error('x'), { code: 'EIO' });
  assert.equal(toFerryError(eio).code, 'FERRY_IO_ERROR');
  assert.equal(toFerryError(eio).retryable, true);
  assert.equal(toFerryError(new TypeError('boom')).code, 'FERRY_INTERNAL');
});

test('an error whose details hold a message logs through pino without throwing', async () => {
  const { pino } = await import('pino');
  const lines: string[] = [];
  const log = pino({}, { write: (s: string) => void lines.push(s) });
  const e = new ImageCorruptError('bad reply', { message: 'server said no', code: 5 });
  log.warn({ err: e, again: e.details }, 'run failed');
  assert.match(lines.join(''), /server said no/);
});
