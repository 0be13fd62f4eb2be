import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import {
  dataChunk,
  errorChunk,
  fakeNbd,
  holeChunk,
  optionReply,
  simpleReply,
  statusChunk,
  structured,
  type FakeNbdOptions,
  type FakeRequest,
} from '../../../../test/helpers/nbd-server.js';
import { NbdClient } from './client.js';
import { queryExtents } from './extents.js';
import { rejectsWith } from '../../../../test/helpers/errors.js';

const content = (offset: number, length: number) => {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = ((offset + i) * 7) & 0xff;
  return b;
};

/** Runs `fn` against a fake server and a connected client, closing both afterwards. */
async function withServer(
  o: FakeNbdOptions,
  fn: (c: NbdClient) => Promise<void>,
  clientOptions: { maxInFlight?: number; requestTimeoutMs?: number; metaContexts?: string[] } = {},
): Promise<void> {
  const srv = await fakeNbd(o);
  try {
    const c = await NbdClient.connect({ path: srv.path }, { exportName: 'e', ...clientOptions });
    try {
      await fn(c);
    } finally {
      await c.close();
    }
  } finally {
    srv.close();
  }
}

/** A hostile reply to the first read; the read and every later request fail with `code`. */
async function hostileRead(reply: (r: FakeRequest, s: Socket) => void, code: string): Promise<void> {
  await withServer({ onRequest: reply }, async (c) => {
    await rejectsWith(c.read(4096, 4096), code);
    assert.equal(c.closed, true);
    await rejectsWith(c.read(0, 512), code);
  });
}

test('reads: data and hole chunks in any order fill the buffer; requests split at the max block size and aligned', async () => {
  const seen: FakeRequest[] = [];
  await withServer(
    {
      size: 1 << 20,
      blockSize: { min: 512, preferred: 4096, max: 65536 },
      onRequest(r, s) {
        seen.push(r);
        const half = r.length / 2;
        // Second half as a hole (when the content there is not needed, the test checks zeros), first half as data, reversed.
        if (r.offset === 0) {
          s.write(holeChunk(r.cookie, r.offset + half, half, false));
          s.write(dataChunk(r.cookie, r.offset, content(r.offset, half)));
        } else s.write(dataChunk(r.cookie, r.offset, content(r.offset, r.length)));
      },
    },
    async (c) => {
      assert.equal(c.info.maxBlockSize, 65536);
      const first = await c.read(0, 65536);
      assert.ok(first.subarray(0, 32768).equals(content(0, 32768)));
      assert.ok(first.subarray(32768).equals(Buffer.alloc(32768)));
      seen.length = 0;
      // Unaligned and larger than the max block size: widened to 512, split into ≤ 64 KiB requests.
      const got = await c.read(100_001, 200_000);
      assert.ok(got.equals(content(100_001, 200_000)));
      assert.ok(seen.every((r) => r.offset % 512 === 0 && r.length % 512 === 0 && r.length <= 65536));
      assert.equal(seen[0]?.offset, 99_840);
      assert.equal(
        seen.reduce((s, r) => s + r.length, 0),
        300_032 - 99_840,
      );
      assert.deepEqual(await c.read(5, 0), Buffer.alloc(0));
      await rejectsWith(c.read(1 << 20, 1), 'FERRY_IMAGE_TRUNCATED');
    },
  );
});

test('pipelining: at most maxInFlight requests outstanding, replies matched by cookie out of order', async () => {
  let outstanding = 0;
  let peak = 0;
  const queue: FakeRequest[] = [];
  let sock: Socket | undefined;
  const flush = () => {
    // Answer everything queued, newest first, once the client stops sending.
    const batch = queue.splice(0).reverse();
    for (const r of batch) {
      outstanding--;
      sock?.write(dataChunk(r.cookie, r.offset, content(r.offset, r.length)));
    }
  };
  await withServer(
    {
      size: 1 << 20,
      onRequest(r, s) {
        sock = s;
        outstanding++;
        peak = Math.max(peak, outstanding);
        queue.push(r);
        setTimeout(flush, 20);
      },
    },
    async (c) => {
      const reads = Array.from({ length: 12 }, (_, i) => c.read(i * 4096, 4096));
      const got = await Promise.all(reads);
      got.forEach((b, i) => assert.ok(b.equals(content(i * 4096, 4096))));
      assert.equal(peak, 3);
    },
    { maxInFlight: 3 },
  );
});

test('block status: contexts by id, partial answers continued, extents merged', async () => {
  await withServer(
    {
      size: 1 << 20,
      contexts: { 'base:allocation': 7, 'qemu:dirty-bitmap:b': 9 },
      onRequest(r, s) {
        // Answers at most 64 KiB per request; allocation alternates data/hole per 16 KiB granule.
        const n = Math.min(r.length, 65536);
        const ext: [number, number][] = [];
        for (let pos = r.offset; pos < r.offset + n;) {
          const g = Math.floor(pos / 16384);
          const stop = Math.min(r.offset + n, (g + 1) * 16384);
          ext.push([stop - pos, g % 2 ? 3 : 0]);
          pos = stop;
        }
        s.write(statusChunk(r.cookie, 9, [[n, 1]], false));
        s.write(statusChunk(r.cookie, 7, ext));
      },
    },
    async (c) => {
      const one = await c.blockStatus(0, 1 << 20);
      assert.deepEqual(one.get('qemu:dirty-bitmap:b'), [{ offset: 0, length: 65536, flags: 1 }]);
      assert.equal(one.get('base:allocation')?.length, 4);
      const all = await queryExtents(c, 'qemu:dirty-bitmap:b', 0, 1 << 20);
      assert.deepEqual(all, [{ offset: 0, length: 1 << 20, flags: 1 }]);
      const alloc = await queryExtents(c, 'base:allocation', 8192, 40000);
      assert.deepEqual(alloc, [
        { offset: 8192, length: 8192, flags: 0 },
        { offset: 16384, length: 16384, flags: 3 },
        { offset: 32768, length: 15424, flags: 0 },
      ]);
      await rejectsWith(queryExtents(c, 'qemu:allocation-depth', 0, 10), 'FERRY_INVALID_ARGUMENT');
    },
    { metaContexts: ['base:allocation', 'qemu:dirty-bitmap:b'] },
  );
});

test('server errors: error chunks and simple error replies fail one request (retryable) and keep the connection', async () => {
  await withServer(
    {
      onRequest(r, s) {
        if (r.offset === 0) s.write(errorChunk(r.cookie, 5, 'medium error'));
        else if (r.offset === 512) s.write(simpleReply(r.cookie, 22));
        else if (r.offset === 1024)
          s.write(errorChunk(r.cookie, 1, 'odd', 0x8000 + 50)); // unknown error type
        else s.write(dataChunk(r.cookie, r.offset, content(r.offset, r.length)));
      },
    },
    async (c) => {
      const e = await rejectsWith(c.read(0, 512), 'FERRY_NBD_REQUEST_FAILED');
      assert.equal(e.details.errno, 'EIO');
      assert.equal(e.details.serverMessage, 'medium error');
      assert.equal(e.retryable, true);
      assert.equal((await rejectsWith(c.read(512, 512), 'FERRY_NBD_REQUEST_FAILED')).details.errno, 'EINVAL');
      assert.equal((await rejectsWith(c.read(1024, 512), 'FERRY_NBD_REQUEST_FAILED')).details.errno, 'EPERM');
      assert.ok((await c.read(2048, 512)).equals(content(2048, 512)));
      assert.equal(c.closed, false);
    },
  );
});

test('ESHUTDOWN from the server: the request fails and the client disconnects softly', async () => {
  await withServer(
    { onRequest: (r, s) => s.write(errorChunk(r.cookie, 108, 'shutting down')) },
    async (c) => {
      const e = await rejectsWith(c.read(0, 512), 'FERRY_NBD_REQUEST_FAILED');
      assert.equal(e.details.errno, 'ESHUTDOWN');
      for (let i = 0; i < 100 && !c.closed; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(c.closed, true);
      await rejectsWith(c.read(0, 512), 'FERRY_NBD_DISCONNECTED');
    },
  );
});

test('hostile replies fail the connection with coded errors, never a hang or a huge allocation', async () => {
  // Wrong magic.
  await hostileRead(
    (r, s) => s.write(Buffer.concat([Buffer.from('deadbeef', 'hex'), Buffer.alloc(12)])),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  // A cookie that is not in flight.
  await hostileRead(
    (r, s) => s.write(dataChunk(Buffer.from('0000000000009999', 'hex'), r.offset, content(0, r.length))),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  // A data chunk longer than the request (the header alone is refused; no payload is awaited).
  await hostileRead(
    (r, s) => s.write(structured(1, 1, r.cookie, Buffer.alloc(0), 0xfffffff0)),
    'FERRY_NBD_TOO_LARGE',
  );
  // A data chunk outside the request.
  await hostileRead(
    (r, s) => s.write(dataChunk(r.cookie, r.offset + 8, content(0, r.length))),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  // A truncated chunk: the header promises more than arrives before the server hangs up.
  await hostileRead(
    (r, s) =>
      s.end(
        structured(
          1,
          1,
          r.cookie,
          dataChunk(r.cookie, r.offset, Buffer.alloc(100)).subarray(20),
          8 + r.length,
        ),
      ),
    'FERRY_NBD_DISCONNECTED',
  );
  // Chunks that leave a gap, and chunks that overlap.
  await hostileRead(
    (r, s) => s.write(dataChunk(r.cookie, r.offset, content(0, 1024))),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  await hostileRead((r, s) => {
    s.write(dataChunk(r.cookie, r.offset, content(0, 2048), false));
    s.write(holeChunk(r.cookie, r.offset + 1024, 2048, false));
    s.write(holeChunk(r.cookie, r.offset + 3072, 1024));
  }, 'FERRY_NBD_PROTOCOL_ERROR');
  // A simple success reply to a read after structured replies were negotiated.
  await hostileRead(
    (r, s) => s.write(simpleReply(r.cookie, 0, content(0, r.length))),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  // Block status in reply to a read, and a chunk of unknown type.
  await hostileRead((r, s) => s.write(statusChunk(r.cookie, 1, [[4096, 0]])), 'FERRY_NBD_PROTOCOL_ERROR');
  await hostileRead(
    (r, s) => s.write(structured(1, 42, r.cookie, Buffer.alloc(4))),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
});

test('hostile block status: extents past the request, oversized lists, unknown context ids', async () => {
  const run = async (reply: (r: FakeRequest, s: Socket) => void, code: string) =>
    withServer(
      { contexts: { 'base:allocation': 1 }, onRequest: reply },
      async (c) => {
        await rejectsWith(c.blockStatus(0, 65536), code);
      },
      { metaContexts: ['base:allocation'] },
    );
  await run(
    (r, s) =>
      s.write(
        statusChunk(r.cookie, 1, [
          [65536 + 512, 0],
          [512, 0],
        ]),
      ),
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  await run(
    (r, s) => s.write(structured(1, 5, r.cookie, Buffer.alloc(0), 4 + 8 * (1 << 20))),
    'FERRY_NBD_TOO_LARGE',
  );
  await run((r, s) => s.write(statusChunk(r.cookie, 2, [[512, 0]])), 'FERRY_NBD_PROTOCOL_ERROR');
  await run((r, s) => {
    s.write(statusChunk(r.cookie, 1, [[512, 0]], false));
    s.write(statusChunk(r.cookie, 1, [[512, 0]]));
  }, 'FERRY_NBD_PROTOCOL_ERROR');
});

test('a server that stops answering: FERRY_NBD_TIMEOUT (retryable) for the request and the connection', async () => {
  await withServer(
    { onRequest: () => {} },
    async (c) => {
      const e = await rejectsWith(c.read(0, 512), 'FERRY_NBD_TIMEOUT');
      assert.equal(e.retryable, true);
      await rejectsWith(c.read(0, 512), 'FERRY_NBD_TIMEOUT');
    },
    { requestTimeoutMs: 100 },
  );
});

test('handshake: hostile or limited servers give coded errors', async () => {
  const connect = async (
    o: FakeNbdOptions,
    code: string,
    extra: { metaContexts?: string[]; connectTimeoutMs?: number } = {},
  ) => {
    const srv = await fakeNbd(o);
    try {
      return await rejectsWith(NbdClient.connect({ path: srv.path }, { exportName: 'e', ...extra }), code);
    } finally {
      srv.close();
    }
  };
  await connect({ greeting: Buffer.from('HTTP/1.1 400 Bad Request\r\n') }, 'FERRY_NBD_PROTOCOL_ERROR');
  const old = Buffer.concat([
    Buffer.from('NBDMAGIC'),
    Buffer.from('0000420281861253', 'hex'),
    Buffer.alloc(3),
  ]);
  await connect({ greeting: old }, 'FERRY_NBD_UNSUPPORTED');
  await connect(
    { greeting: Buffer.concat([Buffer.from('NBDMAGICIHAVEOPT'), Buffer.from([0, 0])]) },
    'FERRY_NBD_UNSUPPORTED',
  );
  await connect({ greeting: Buffer.alloc(0) }, 'FERRY_NBD_TIMEOUT', { connectTimeoutMs: 100 });
  // An option reply claiming 1 GiB of payload.
  await connect(
    { onOption: (opt) => (opt === 8 ? optionReply(8, 1, Buffer.alloc(0)).fill(0xff, 16, 20) : undefined) },
    'FERRY_NBD_TOO_LARGE',
  );
  // A reply to an option that was not sent.
  await connect(
    { onOption: (opt) => (opt === 8 ? optionReply(9, 1) : undefined) },
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  const goError = (type: number, msg = '') => ({
    onOption: (opt: number) => (opt === 7 ? optionReply(7, type, Buffer.from(msg)) : undefined),
  });
  const nf = await connect(goError(0x80000006, 'no such export'), 'FERRY_NBD_EXPORT_NOT_FOUND');
  assert.equal(nf.details.serverMessage, 'no such export');
  await connect(goError(0x80000005), 'FERRY_NBD_UNSUPPORTED');
  await connect(goError(0x80000001), 'FERRY_NBD_UNSUPPORTED');
  await connect(goError(0x80000002), 'FERRY_NBD_OPTION_REFUSED');
  await connect(goError(0x80000007), 'FERRY_NBD_OPTION_REFUSED');
  // GO acknowledged without NBD_INFO_EXPORT; an export beyond 64 TiB; a block size that breaks the spec.
  await connect(
    { onOption: (opt) => (opt === 7 ? optionReply(7, 1) : undefined) },
    'FERRY_NBD_PROTOCOL_ERROR',
  );
  await connect({ size: 2 ** 47 }, 'FERRY_NBD_TOO_LARGE');
  await connect({ blockSize: { min: 3, preferred: 4096, max: 65536 } }, 'FERRY_NBD_PROTOCOL_ERROR');
  // Without structured replies there is no block status; a context the export lacks is refused.
  await connect({ structured: false }, 'FERRY_NBD_UNSUPPORTED', { metaContexts: ['base:allocation'] });
  const miss = await connect({ contexts: { 'base:allocation': 1 } }, 'FERRY_NBD_UNSUPPORTED', {
    metaContexts: ['base:allocation', 'qemu:dirty-bitmap:x'],
  });
  assert.equal(miss.details.contexts, 'qemu:dirty-bitmap:x');
  // A context granted that was not asked for.
  await connect(
    {
      onOption: (opt) =>
        opt === 10
          ? Buffer.concat([
              optionReply(10, 4, Buffer.concat([Buffer.alloc(4), Buffer.from('base:evil')])),
              optionReply(10, 1),
            ])
          : undefined,
    },
    'FERRY_NBD_PROTOCOL_ERROR',
    { metaContexts: ['base:allocation'] },
  );
  // No server at all.
  await rejectsWith(
    NbdClient.connect({ path: '/nonexistent/ferry.sock' }, { exportName: '' }),
    'FERRY_NBD_DISCONNECTED',
  );
});

test('without structured replies, reads use simple replies with data', async () => {
  await withServer(
    {
      structured: false,
      onRequest: (r, s) => s.write(simpleReply(r.cookie, 0, content(r.offset, r.length))),
    },
    async (c) => {
      assert.equal(c.info.structuredReplies, false);
      assert.ok((await c.read(1000, 3000)).equals(content(1000, 3000)));
    },
  );
});
