import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FerryError } from '../errors/index.js';
import { CUSTOM_TYPE_LIMITS, INSTANCE_TYPES, instanceType } from './instance-types.js';

const invalid = (spec: string) =>
  assert.throws(
    () => instanceType(spec),
    (e: unknown) => FerryError.is(e) && e.code === 'FERRY_LAUNCH_INSTANCE_TYPE_INVALID',
    spec,
  );

test('named types carry the EC2 sizes', () => {
  assert.deepEqual(instanceType('t3.nano'), { name: 't3.nano', vcpus: 2, memoryMiB: 512 });
  assert.deepEqual(instanceType('m5.xlarge'), { name: 'm5.xlarge', vcpus: 4, memoryMiB: 16384 });
  assert.deepEqual(instanceType('t2.micro'), { name: 't2.micro', vcpus: 1, memoryMiB: 1024 });
  assert.equal(new Set(INSTANCE_TYPES.map((t) => t.name)).size, INSTANCE_TYPES.length);
});

test('custom:<vCPUs>x<MiB> within bounds', () => {
  assert.deepEqual(instanceType('custom:1x256'), { name: 'custom:1x256', vcpus: 1, memoryMiB: 256 });
  const L = CUSTOM_TYPE_LIMITS;
  instanceType(`custom:${L.maxVcpus}x${L.maxMemoryMiB}`);
  instanceType(`custom:${L.minVcpus}x${L.minMemoryMiB}`);
  invalid(`custom:${L.maxVcpus + 1}x1024`);
  invalid(`custom:1x${L.minMemoryMiB - 1}`);
  invalid(`custom:1x${L.maxMemoryMiB + 1}`);
  for (const s of [
    'custom:0x256',
    'custom:01x256',
    'custom:1x',
    'custom:-1x256',
    'custom:1.5x256',
    'custom:1x256 ',
    'custom:1X256',
    'custom:99999999x1',
    't3.humongous',
    '',
    'x'.repeat(10_000),
  ]) {
    invalid(s);
  }
});

test('docs/launch.md lists every named type with its size', () => {
  const doc = readFileSync(new URL('../../../docs/launch.md', import.meta.url), 'utf8');
  for (const t of INSTANCE_TYPES) {
    const row = new RegExp(
      `^\\| \`${t.name.replace('.', '\\.')}\` \\| ${t.vcpus} \\| ${t.memoryMiB} \\|`,
      'm',
    );
    assert.match(doc, row, `${t.name} missing or wrong in docs/launch.md`);
  }
});
