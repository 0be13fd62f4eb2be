import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_QMP_MESSAGE_BYTES, parseQmpMessage, QmpLineBuffer } from './framing.js';
import { codeOf } from '../../../../test/helpers/errors.js';

test('line buffer: CRLF and LF lines, split anywhere, multibyte characters across chunks', () => {
  const lb = new QmpLineBuffer();
  const text = Buffer.from('{"a":"é"}\r\n{"b":2}\n\r\n{"c":');
  const lines: string[] = [];
  for (let i = 0; i < text.length; i++) lines.push(...lb.push(text.subarray(i, i + 1)));
  assert.deepEqual(lines, ['{"a":"é"}', '{"b":2}']);
  assert.equal(lb.pending, 5);
  assert.deepEqual(lb.push(Buffer.from('3}\r\n')), ['{"c":3}']);
  assert.equal(lb.pending, 0);
});

test('line buffer: a message over the cap is refused, with or without a newline', () => {
  assert.equal(MAX_QMP_MESSAGE_BYTES, 16 * 1024 * 1024);
  const lb = new QmpLineBuffer(100);
  lb.push(Buffer.alloc(60, 0x20));
  assert.equal(
    codeOf(() => lb.push(Buffer.alloc(41, 0x20))),
    'FERRY_QMP_MESSAGE_TOO_LARGE',
  );
  const lb2 = new QmpLineBuffer(100);
  assert.equal(
    codeOf(() => lb2.push(Buffer.from(`${' '.repeat(101)}\n`))),
    'FERRY_QMP_MESSAGE_TOO_LARGE',
  );
  // Exactly at the cap is fine.
  assert.deepEqual(new QmpLineBuffer(7).push(Buffer.from('{"a":1}\n')), ['{"a":1}']);
});

test('messages: greeting, return, error, event are classified; anything else is a protocol error', () => {
  const g = parseQmpMessage(
    '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}',
  );
  assert.deepEqual(g, {
    type: 'greeting',
    version: { major: 7, minor: 2, micro: 22, package: 'Debian' },
    capabilities: ['oob'],
  });
  assert.deepEqual(parseQmpMessage('{"return": {}, "id": "x"}'), { type: 'return', id: 'x', value: {} });
  assert.deepEqual(parseQmpMessage('{"error": {"class": "GenericError", "desc": "no"}}'), {
    type: 'error',
    id: undefined,
    errorClass: 'GenericError',
    desc: 'no',
  });
  const e = parseQmpMessage('{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}');
  assert.deepEqual(e, { type: 'event', event: 'STOP', data: {}, timestamp: { seconds: 1, microseconds: 2 } });
  for (const bad of [
    'not json',
    '[1,2]',
    'null',
    '{"QMP": {}}',
    '{"QMP": {"version": {"qemu": {"major": -1, "minor": 0, "micro": 0}}}}',
    '{"error": "x"}',
    '{"error": {"class": 1, "desc": "x"}}',
    '{"something": 1}',
  ]) {
    assert.equal(
      codeOf(() => parseQmpMessage(bad)),
      'FERRY_QMP_PROTOCOL_ERROR',
      bad,
    );
  }
});
