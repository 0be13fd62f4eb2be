/** Probes against real loopback sockets, a real HTTP server and real child processes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttp } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import {
  consoleProbe,
  freeLoopbackPort,
  httpProbe,
  MAX_CAPTURE_BYTES,
  scriptProbe,
  tcpProbe,
} from './probes.js';

test('console: passes once the text matches; fails with the last output at the deadline or when stopped', async () => {
  let text = 'booting\n';
  setTimeout(() => (text += 'FERRY-BOOT-MARKER: web\n'), 300);
  assert.equal((await consoleProbe(async () => text, /MARKER: web/, 5000)).ok, true);
  const late = await consoleProbe(async () => 'still booting', /login:/, 400);
  assert.equal(late.ok, false);
  assert.match(late.message, /did not match \/login:\/ within 0 s; last output: "still booting"/);
  const dead = await consoleProbe(
    async () => '',
    /x/,
    5000,
    () => true,
  );
  assert.match(dead.message, /stopped before/);
});

test('tcp: retries until a listener appears; a closed port fails with the errno', async () => {
  const port = await freeLoopbackPort();
  const srv = createServer((s) => s.end());
  setTimeout(() => srv.listen(port, '127.0.0.1'), 700);
  try {
    const r = await tcpProbe('127.0.0.1', port, 5000);
    assert.equal(r.ok, true, r.message);
  } finally {
    srv.close();
  }
  const closed = await tcpProbe('127.0.0.1', await freeLoopbackPort(), 600);
  assert.equal(closed.ok, false);
  assert.match(closed.message, /ECONNREFUSED/);
});

test('http: status and body pattern; a huge body is cut, not buffered', async () => {
  let status = 503;
  const srv = createHttp((req, res) => {
    if (req.url === '/huge') {
      res.writeHead(200);
      const chunk = Buffer.alloc(1 << 20, 0x61);
      let n = 0;
      const more = () => {
        while (n++ < 64 && res.write(chunk));
        if (n < 64) res.once('drain', more);
        else res.end('OK-at-the-end');
      };
      more();
      return;
    }
    res.writeHead(status).end(status === 200 ? 'service ready' : 'starting');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  try {
    setTimeout(() => (status = 200), 600);
    const r = await httpProbe(
      '127.0.0.1',
      port,
      { path: '/health', status: 200, bodyPattern: /ready/ },
      5000,
    );
    assert.equal(r.ok, true, r.message);
    const wrong = await httpProbe('127.0.0.1', port, { path: '/', bodyPattern: /nope/ }, 300);
    assert.match(wrong.message, /body did not match/);
    const huge = await httpProbe('127.0.0.1', port, { path: '/huge', bodyPattern: /OK-at-the-end/ }, 1500);
    assert.equal(huge.ok, false, `only ${MAX_CAPTURE_BYTES} bytes are read`);
  } finally {
    srv.close();
  }
});

test('script: exit 0 passes with its output; failures, timeouts (whole process group) and bad commands fail', async () => {
  const ok = await scriptProbe('echo "checked $FERRY_INSTANCE_ID"', { FERRY_INSTANCE_ID: 'i-1' }, 5000);
  assert.deepEqual(ok, { ok: true, message: 'the script passed: checked i-1' });
  const bad = await scriptProbe('echo broken >&2; exit 3', {}, 5000);
  assert.deepEqual(bad, { ok: false, message: 'the script failed (exit 3): broken' });
  const t0 = Date.now();
  const slow = await scriptProbe('sleep 30 & sleep 30', {}, 500);
  assert.match(slow.message, /ran over 1 s and was killed|ran over 0 s and was killed/);
  assert.ok(Date.now() - t0 < 5000);
  const noisy = await scriptProbe('head -c 10000000 /dev/zero | tr "\\0" x; exit 1', {}, 5000);
  assert.equal(noisy.ok, false);
  assert.ok(noisy.message.length < 1000);
});
