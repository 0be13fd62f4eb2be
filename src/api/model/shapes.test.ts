import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { OPERATIONS, SHAPES } from './shapes.js';

const ROOT = new URL('../../../../', import.meta.url).pathname;
const MODEL = '/usr/lib/python3/dist-packages/awscli/botocore/data/sms/2016-10-24/service-2.json';

test('the model has the 35 SMS operations and every referenced shape', () => {
  assert.equal(Object.keys(OPERATIONS).length, 35);
  const scalars = new Set(['string', 'integer', 'boolean', 'timestamp']);
  for (const [name, s] of Object.entries(SHAPES)) {
    const refs = s.type === 'structure' ? Object.values(s.members) : s.type === 'list' ? [s.member] : [];
    for (const r of refs) assert.ok(scalars.has(r) || SHAPES[r], `${name} refers to missing ${r}`);
  }
  for (const [op, [input, output]] of Object.entries(OPERATIONS)) {
    assert.equal(SHAPES[input]?.type, 'structure', `${op} input`);
    assert.equal(SHAPES[output]?.type, 'structure', `${op} output`);
  }
});

test('shapes.ts is what the generator makes from the awscli model (not stale, not hand-edited)', () => {
  assert.ok(
    existsSync(MODEL),
    `the botocore SMS model is missing at ${MODEL}: install awscli (scripts/install-system-deps.sh)`,
  );
  execFileSync(process.execPath, ['scripts/gen-sms-model.mjs', '--check'], { cwd: ROOT, stdio: 'pipe' });
});
