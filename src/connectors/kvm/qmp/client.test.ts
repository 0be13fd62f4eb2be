import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { tempDir } from '../../../../test/helpers/qemu.js';
import { QmpClient } from './client.js';
import { humanMonitorCommand, queryBlock, queryStatus } from './commands-query.js';
import { rejectsWith } from '../../../../test/helpers/errors.js';

const GREETING =
  '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}\r\n';

/**
 * A scripted QMP peer on a real unix socket: sends the greeting, acknowledges
 * qmp_capabilities and hands every later command to `onCommand`.
 */
async function fakeQmp(
  onCommand: (
    cmd: { execute: string; arguments?: Record<string, unknown>; id?: unknown },
    sock: Socket,
  ) => void,
  greeting = GREETING,
): Promise<{ path: string; server: Server; received: string[] }> {
  const path = join(await tempDir('ferry-qmp-'), 'qmp.sock');
  const received: string[] = [];
  const server = createServer((sock) => {
    sock.write(greeting);
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const cmd = JSON.parse(line) as { execute: string; id?: unknown };
        received.push(cmd.execute);
        if (cmd.execute === 'qmp_capabilities')
          sock.write(`{"return": {}, "id": ${JSON.stringify(cmd.id)}}\r\n`);
        else onCommand(cmd, sock);
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { path, server, received };
}

test('greeting, capabilities, replies matched by id even when answered out of order', async () => {
  const { path, server, received } = await fakeQmp((cmd, sock) => {
    const reply = (v: unknown) => sock.write(`${JSON.stringify({ return: v, id: cmd.id })}\r\n`);
    if (cmd.execute === 'slow') setTimeout(() => reply('slow-done'), 50);
    else if (cmd.execute === 'query-status') reply({ status: 'paused', running: false, singlestep: false });
    else if (cmd.execute === 'human-monitor-command')
      reply(`ran ${String(cmd.arguments?.['command-line'])}\r\n`);
    else reply(cmd.execute);
  });
  const q = await QmpClient.connect({ path });
  try {
    assert.deepEqual(q.version, { major: 7, minor: 2, micro: 0, package: '' });
    assert.deepEqual(q.capabilities, ['oob']);
    const [a, b] = await Promise.all([q.execute('slow'), q.execute('fast')]);
    assert.equal(a, 'slow-done');
    assert.equal(b, 'fast');
    assert.deepEqual(await queryStatus(q), { status: 'paused', running: false, singlestep: false });
    assert.equal(await humanMonitorCommand(q, 'info version'), 'ran info version\r\n');
    assert.deepEqual(received.slice(0, 1), ['qmp_capabilities']);
  } finally {
    await q.close();
    server.close();
  }
});

test('error replies become FERRY_QMP_COMMAND_FAILED with class and desc; bad shapes are protocol errors', async () => {
  const { path, server } = await fakeQmp((cmd, sock) => {
    if (cmd.execute === 'query-block')
      sock.write(`{"return": {"not": "a list"}, "id": ${JSON.stringify(cmd.id)}}\n`);
    else
      sock.write(
        `{"error": {"class": "CommandNotFound", "desc": "The command ${cmd.execute} has not been found"}, "id": ${JSON.stringify(cmd.id)}}\n`,
      );
  });
  const q = await QmpClient.connect({ path });
  try {
    const e = await rejectsWith(q.execute('frobnicate', { x: 1 }), 'FERRY_QMP_COMMAND_FAILED');
    assert.equal(e.details.class, 'CommandNotFound');
    assert.equal(e.details.desc, 'The command frobnicate has not been found');
    assert.equal(e.details.command, 'frobnicate');
    assert.equal(e.retryable, false);
    await rejectsWith(queryBlock(q), 'FERRY_QMP_PROTOCOL_ERROR');
  } finally {
    await q.close();
    server.close();
  }
});

test('events are buffered with sequence numbers; waitForEvent sees buffered and new events, and times out', async () => {
  const { path, server } = await fakeQmp((cmd, sock) => {
    sock.write(
      `{"event": "JOB_STATUS_CHANGE", "data": {"id": "j1", "status": "running"}, "timestamp": {"seconds": 1, "microseconds": 0}}\r\n`,
    );
    sock.write(`{"return": {}, "id": ${JSON.stringify(cmd.id)}}\r\n`);
    setTimeout(
      () =>
        sock.write(
          `{"event": "JOB_STATUS_CHANGE", "data": {"id": "j1", "status": "concluded"}, "timestamp": {"seconds": 2, "microseconds": 0}}\r\n`,
        ),
      30,
    );
  });
  const q = await QmpClient.connect({ path });
  try {
    const mark = q.eventMark;
    const seen: string[] = [];
    const off = q.onEvent((e) => seen.push(String(e.data.status)));
    await q.execute('job-start');
    // The 'running' event arrived before this wait began: the mark makes it visible.
    const running = await q.waitForEvent((e) => e.data.status === 'running', {
      after: mark,
      timeoutMs: 1000,
    });
    assert.equal(running.seq, mark + 1);
    const concluded = await q.waitForEvent((e) => e.data.status === 'concluded', { timeoutMs: 1000 });
    assert.equal(concluded.event, 'JOB_STATUS_CHANGE');
    assert.deepEqual(concluded.timestamp, { seconds: 2, microseconds: 0 });
    assert.deepEqual(seen, ['running', 'concluded']);
    off();
    assert.equal(q.events(mark).length, 2);
    const t0 = Date.now();
    await rejectsWith(
      q.waitForEvent((e) => e.event === 'NEVER', { timeoutMs: 50 }),
      'FERRY_QMP_TIMEOUT',
    );
    assert.ok(Date.now() - t0 < 1000);
    const ac = new AbortController();
    const w = q.waitForEvent(() => false, { signal: ac.signal, timeoutMs: 5000 });
    ac.abort();
    await rejectsWith(w, 'FERRY_ABORTED');
  } finally {
    await q.close();
    server.close();
  }
});

test('a command that gets no answer times out; its late reply is dropped, the connection stays usable', async () => {
  const { path, server } = await fakeQmp((cmd, sock) => {
    const delay = cmd.execute === 'late' ? 150 : 0;
    setTimeout(() => sock.write(`{"return": "${cmd.execute}", "id": ${JSON.stringify(cmd.id)}}\n`), delay);
  });
  const q = await QmpClient.connect({ path }, { commandTimeoutMs: 50 });
  try {
    const e = await rejectsWith(q.execute('late'), 'FERRY_QMP_TIMEOUT');
    assert.equal(e.retryable, true);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await q.execute('next', undefined, { timeoutMs: 1000 }), 'next');
    assert.equal(q.closed, false);
  } finally {
    await q.close();
    server.close();
  }
});

test('the socket dropping mid-command fails it with FERRY_QMP_DISCONNECTED (retryable), and later commands too', async () => {
  const { path, server } = await fakeQmp((_cmd, sock) => sock.destroy());
  const q = await QmpClient.connect({ path });
  try {
    const e = await rejectsWith(q.execute('query-block'), 'FERRY_QMP_DISCONNECTED');
    assert.equal(e.retryable, true);
    assert.equal(q.closed, true);
    await rejectsWith(q.execute('query-status'), 'FERRY_QMP_DISCONNECTED');
  } finally {
    await q.close();
    server.close();
  }
});

test('a message over 16 MiB is refused and the connection closed; no unbounded buffering', async () => {
  const { path, server } = await fakeQmp((cmd, sock) => {
    // A reply that never ends: 17 MiB without a newline.
    sock.write(`{"return": "`);
    const chunk = Buffer.alloc(1 << 20, 0x61);
    for (let i = 0; i < 17; i++) sock.write(chunk);
    void cmd;
  });
  const q = await QmpClient.connect({ path });
  try {
    const e = await rejectsWith(q.execute('query-named-block-nodes'), 'FERRY_QMP_MESSAGE_TOO_LARGE');
    assert.equal(e.details.limit, 16 * 1024 * 1024);
    assert.equal(q.closed, true);
  } finally {
    await q.close();
    server.close();
  }
});

test('connect failures: no socket, no greeting, a peer that is not QMP', async () => {
  const dir = await tempDir('ferry-qmp-');
  const e = await rejectsWith(QmpClient.connect({ path: join(dir, 'none.sock') }), 'FERRY_QMP_DISCONNECTED');
  assert.equal(e.details.errno, 'ENOENT');

  const silent = createServer(() => {});
  const sp = join(dir, 'silent.sock');
  await new Promise<void>((r) => silent.listen(sp, r));
  await rejectsWith(QmpClient.connect({ path: sp }, { connectTimeoutMs: 100 }), 'FERRY_QMP_TIMEOUT');
  silent.close();

  const notQmp = await fakeQmp(() => {}, '{"return": {}}\r\n');
  await rejectsWith(QmpClient.connect({ path: notQmp.path }), 'FERRY_QMP_PROTOCOL_ERROR');
  notQmp.server.close();

  const unknownId = await fakeQmp((_c, sock) => sock.write('{"return": 1, "id": "someone-else"}\n'));
  const q = await QmpClient.connect({ path: unknownId.path });
  await rejectsWith(q.execute('x'), 'FERRY_QMP_PROTOCOL_ERROR');
  await q.close();
  unknownId.server.close();
});
