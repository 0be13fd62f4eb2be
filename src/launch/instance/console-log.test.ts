import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../../../test/helpers/qemu.js';
import { ConsoleLog, MAX_CONSOLE_READ_BYTES } from './console-log.js';

test('a chatty guest cannot grow the log past twice its cap; reads return the newest text', async () => {
  const dir = await tempDir('ferry-console-');
  const log = new ConsoleLog(join(dir, 'console.log'), 1000);
  assert.equal(await log.read(), ''); // no file yet
  for (let i = 0; i < 45; i++) {
    await appendFile(log.path, `line ${String(i).padStart(4, '0')} ${'x'.repeat(90)}\n`);
    await log.check();
  }
  const sizes = await Promise.all([log.path, log.rotated].map(async (p) => (await stat(p)).size));
  assert.ok(
    sizes.every((s) => s <= 1100),
    `sizes ${sizes.join(', ')}`,
  );
  const text = await log.read(1500);
  assert.ok(text.endsWith(`line 0044 ${'x'.repeat(90)}\n`));
  assert.ok(text.length <= 1500);
  assert.ok(text.includes('line 0035')); // from the rotated part
  assert.equal(await log.read(10), `${'x'.repeat(9)}\n`);
  assert.equal(await log.read(-5), '');
  assert.ok((await log.read(Number.MAX_SAFE_INTEGER)).length <= MAX_CONSOLE_READ_BYTES);
  await log.remove();
  await assert.rejects(stat(log.path));
  await assert.rejects(stat(log.rotated));
});
