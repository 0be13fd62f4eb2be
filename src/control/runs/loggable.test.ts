import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { InternalError } from '../../errors/index.js';
import { loggable } from './executor.js';

/** A pino logger writing into a string, as the server's logger does into stderr. */
function logger() {
  let out = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString('utf8');
      cb();
    },
  });
  return { log: pino({ level: 'warn' }, stream), out: () => out };
}

test('a run failure whose details carry a `message` is logged, never thrown from the logger', async () => {
  // NBD errors once carried the server's text as details.message: pino's serializer took
  // the (then frozen) details for an error and threw while tagging them, ending the server.
  // Details are no longer frozen, and the executor logs through loggable() as well.
  const err = new InternalError('export closed', { message: 'no such export', errno: 'ESHUTDOWN' });
  const raw = logger();
  assert.doesNotThrow(() => raw.log.warn({ err }, 'run failed'));

  const safe = logger();
  safe.log.warn({ err: loggable(err), run: 'r-1' }, 'run failed');
  await new Promise((r) => setImmediate(r));
  const line = JSON.parse(safe.out()) as { err: Record<string, unknown>; run: string };
  assert.equal(line.run, 'r-1');
  assert.equal(line.err.code, 'FERRY_INTERNAL');
  assert.equal(line.err.message, 'export closed');
  assert.match(String(line.err.stack), /export closed/);
  const details = line.err.details as Record<string, unknown>;
  assert.equal(details.message, 'no such export');
  assert.equal(details.errno, 'ESHUTDOWN');
  // Any thrown value becomes coded data.
  assert.equal((loggable('boom') as { code: string }).code, 'FERRY_INTERNAL');
});
