/**
 * The NBD server against raw sockets: a well-behaved client written here byte by byte
 * (structured replies, holes, block status, DF, simple replies), and hostile ones (bad
 * magic, huge option, unknown flags, slow handshake, reads past the end or too large,
 * unknown commands, writes, too many connections, floods of requests). Each hostile
 * client gets an error reply or a closed connection; the server keeps serving others.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Disk } from '../../disk/index.js';
import { tempDir } from '../../../test/helpers/qemu.js';
import { RawClient, storeImage } from '../../../test/helpers/launch.js';
import { NbdServer, type NbdServerEvent } from '../index.js';
import * as P from './protocol.js';

const u32 = (...v: number[]) =>
  Buffer.concat(v.map((x) => Buffer.from([x >>> 24, x >>> 16, x >>> 8, x].map((b) => b & 255))));
const u16 = (v: number) => Buffer.from([(v >> 8) & 255, v & 255]);
const u64 = (v: number | bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
};
const str = (s: string) => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);
const option = (opt: number, data = Buffer.alloc(0), len = data.length) =>
  Buffer.concat([u64(P.NBD_OPTS_MAGIC), u32(opt, len), data]);
const request = (type: number, offset: number, length: number, flags = 0, cookie = 7) =>
  Buffer.concat([u32(P.NBD_REQUEST_MAGIC), u16(flags), u16(type), u64(cookie), u64(offset), u32(length)]);

/** Reads one option reply: [type, payload]. */
async function optionReply(c: RawClient, expectOption: number): Promise<[number, Buffer]> {
  const h = await c.take(20);
  assert.equal(h.readBigUInt64BE(0), P.NBD_REP_MAGIC);
  assert.equal(h.readUInt32BE(8), expectOption);
  return [h.readUInt32BE(12), await c.take(h.readUInt32BE(16))];
}

async function greet(
  c: RawClient,
  flags = P.NBD_FLAG_C_FIXED_NEWSTYLE | P.NBD_FLAG_C_NO_ZEROES,
): Promise<void> {
  const g = await c.take(18);
  assert.equal(g.readBigUInt64BE(0), P.NBD_MAGIC);
  assert.equal(g.readBigUInt64BE(8), P.NBD_OPTS_MAGIC);
  c.write(u32(flags));
}

/** Full handshake to transmission; returns the export size and transmission flags. */
async function open(
  c: RawClient,
  name: string,
  opts: { structured?: boolean; meta?: boolean } = {},
): Promise<{ size: number; flags: number }> {
  await greet(c);
  if (opts.structured) {
    c.write(option(P.NBD_OPT_STRUCTURED_REPLY));
    assert.equal((await optionReply(c, P.NBD_OPT_STRUCTURED_REPLY))[0], P.NBD_REP_ACK);
  }
  if (opts.meta) {
    c.write(option(P.NBD_OPT_SET_META_CONTEXT, Buffer.concat([str(name), u32(1), str('base:allocation')])));
    const [t, p] = await optionReply(c, P.NBD_OPT_SET_META_CONTEXT);
    assert.equal(t, P.NBD_REP_META_CONTEXT);
    assert.equal(p.subarray(4).toString(), 'base:allocation');
    assert.equal((await optionReply(c, P.NBD_OPT_SET_META_CONTEXT))[0], P.NBD_REP_ACK);
  }
  c.write(option(P.NBD_OPT_GO, Buffer.concat([str(name), u16(1), u16(P.NBD_INFO_BLOCK_SIZE)])));
  let size = -1;
  let flags = 0;
  for (;;) {
    const [t, p] = await optionReply(c, P.NBD_OPT_GO);
    if (t === P.NBD_REP_ACK) break;
    assert.equal(t, P.NBD_REP_INFO);
    if (p.readUInt16BE(0) === P.NBD_INFO_EXPORT) {
      size = Number(p.readBigUInt64BE(2));
      flags = p.readUInt16BE(10);
    }
  }
  return { size, flags };
}

async function simpleReply(c: RawClient, cookie = 7): Promise<number> {
  const r = await c.take(16);
  assert.equal(r.readUInt32BE(0), P.NBD_SIMPLE_REPLY_MAGIC);
  assert.equal(r.readBigUInt64BE(8), BigInt(cookie));
  return r.readUInt32BE(4);
}

interface Chunk {
  flags: number;
  type: number;
  payload: Buffer;
}
async function chunks(c: RawClient): Promise<Chunk[]> {
  const out: Chunk[] = [];
  for (;;) {
    const h = await c.take(20);
    assert.equal(h.readUInt32BE(0), P.NBD_STRUCTURED_REPLY_MAGIC);
    const ch = {
      flags: h.readUInt16BE(4),
      type: h.readUInt16BE(6),
      payload: await c.take(h.readUInt32BE(16)),
    };
    out.push(ch);
    if (ch.flags & P.NBD_REPLY_FLAG_DONE) return out;
  }
}

/** Reassembles a structured read reply into bytes (holes as zeros). */
function assemble(cs: Chunk[], offset: number, length: number): Buffer {
  const out = Buffer.alloc(length, 0xee);
  for (const ch of cs) {
    const at = Number(ch.payload.readBigUInt64BE(0)) - offset;
    if (ch.type === P.NBD_REPLY_TYPE_OFFSET_DATA) ch.payload.subarray(8).copy(out, at);
    else if (ch.type === P.NBD_REPLY_TYPE_OFFSET_HOLE) out.fill(0, at, at + ch.payload.readUInt32BE(8));
    else assert.fail(`unexpected chunk type ${ch.type}`);
  }
  return out;
}

let dir: string;
let data: Buffer;
let disk: Disk;
let server: NbdServer;
const events: NbdServerEvent[] = [];
const clients: RawClient[] = [];
const connect = async (path = server.path) => {
  const c = await RawClient.connect(path);
  clients.push(c);
  return c;
};

before(async () => {
  dir = await tempDir('ferry-nbd-hostile-');
  // 1 MiB of text, 1 MiB of zeros (a hole), 1 MiB of text.
  const text = Buffer.from('ferry launches images in place\n'.repeat(40_000)).subarray(0, 1 << 20);
  data = Buffer.concat([text, Buffer.alloc(1 << 20), text]);
  disk = await (await storeImage(data)).open();
  server = await NbdServer.listen({
    path: join(dir, 'nbd.sock'),
    exports: [{ name: 'disk0', disk }],
    maxConnections: 4,
    handshakeTimeoutMs: 500,
    onEvent: (e) => events.push(e),
  });
});

/** Waits (bounded) until `cond` holds: server-side effects follow the client's view by a tick. */
async function eventually(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), 'condition not met in time');
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await eventually(() => server.connections === 0);
});

after(async () => {
  await server.close();
  await disk.close();
});

/** Proves the server still serves: a fresh client reads the first bytes. */
async function stillServes(): Promise<void> {
  const c = await connect();
  await open(c, 'disk0');
  c.write(request(P.NBD_CMD_READ, 0, 64));
  assert.equal(await simpleReply(c), 0);
  assert.deepEqual(await c.take(64), data.subarray(0, 64));
  c.close();
}

test('structured read: data and hole chunks reassemble to the image; DF gives one chunk', async () => {
  const c = await connect();
  const { size, flags } = await open(c, 'disk0', { structured: true });
  assert.equal(size, data.length);
  assert.ok(flags & P.NBD_FLAG_READ_ONLY && flags & P.NBD_FLAG_SEND_DF);
  const off = (1 << 20) - 1000;
  const len = (1 << 20) + 5000;
  c.write(request(P.NBD_CMD_READ, off, len));
  const cs = await chunks(c);
  assert.ok(
    cs.some((ch) => ch.type === P.NBD_REPLY_TYPE_OFFSET_HOLE),
    'the zero MiB is a hole',
  );
  assert.deepEqual(assemble(cs, off, len), data.subarray(off, off + len));
  c.write(request(P.NBD_CMD_READ, off, len, P.NBD_CMD_FLAG_DF));
  const df = await chunks(c);
  assert.equal(df.length, 1);
  assert.deepEqual(assemble(df, off, len), data.subarray(off, off + len));
});

test('block status reports data, hole+zero, data; REQ_ONE gives one descriptor', async () => {
  const c = await connect();
  await open(c, 'disk0', { structured: true, meta: true });
  c.write(request(P.NBD_CMD_BLOCK_STATUS, 0, data.length));
  const [bs] = await chunks(c);
  assert.equal(bs!.type, P.NBD_REPLY_TYPE_BLOCK_STATUS);
  assert.equal(bs!.payload.readUInt32BE(0), P.BASE_ALLOCATION_ID);
  const d = [];
  for (let i = 4; i < bs!.payload.length; i += 8)
    d.push([bs!.payload.readUInt32BE(i), bs!.payload.readUInt32BE(i + 4)]);
  assert.deepEqual(d, [
    [1 << 20, 0],
    [1 << 20, P.NBD_STATE_HOLE | P.NBD_STATE_ZERO],
    [1 << 20, 0],
  ]);
  c.write(request(P.NBD_CMD_BLOCK_STATUS, 0, data.length, P.NBD_CMD_FLAG_REQ_ONE));
  const [one] = await chunks(c);
  assert.equal(one!.payload.length, 12);
});

test('bad requests get error replies and the connection stays in sync', async () => {
  const c = await connect();
  await open(c, 'disk0');
  c.write(request(P.NBD_CMD_READ, data.length - 10, 11)); // past the end
  assert.equal(await simpleReply(c), P.EINVAL);
  c.write(request(P.NBD_CMD_READ, 0, 33 * 1024 * 1024)); // over 32 MiB
  assert.equal(await simpleReply(c), P.EINVAL);
  c.write(Buffer.concat([request(P.NBD_CMD_READ, 0, 0), request(P.NBD_CMD_READ, 0, 1, 1 << 9)]));
  assert.equal(await simpleReply(c), P.EINVAL); // empty
  assert.equal(await simpleReply(c), P.EINVAL); // unknown flag
  c.write(Buffer.concat([u32(P.NBD_REQUEST_MAGIC), u16(0), u16(0), u64(7), u64(2n ** 63n), u32(1)]));
  assert.equal(await simpleReply(c), P.EINVAL); // offset beyond 2^53
  c.write(request(42, 0, 1)); // unknown command
  assert.equal(await simpleReply(c), P.EINVAL);
  c.write(Buffer.concat([request(P.NBD_CMD_WRITE, 0, 4096), Buffer.alloc(4096, 1)]));
  assert.equal(await simpleReply(c), P.EPERM);
  c.write(request(P.NBD_CMD_TRIM, 0, 4096));
  assert.equal(await simpleReply(c), P.EPERM);
  c.write(request(P.NBD_CMD_BLOCK_STATUS, 0, 4096)); // no context selected
  assert.equal(await simpleReply(c), P.EINVAL);
  c.write(request(P.NBD_CMD_FLUSH, 0, 0));
  assert.equal(await simpleReply(c), 0);
  c.write(request(P.NBD_CMD_READ, 100, 50)); // still in sync after the write payload
  assert.equal(await simpleReply(c), 0);
  assert.deepEqual(await c.take(50), data.subarray(100, 150));
  c.write(request(P.NBD_CMD_DISC, 0, 0));
  await c.waitClosed();
});

test('structured errors carry a message; reads past the end never return data', async () => {
  const c = await connect();
  await open(c, 'disk0', { structured: true });
  c.write(request(P.NBD_CMD_READ, data.length, 1));
  const [e] = await chunks(c);
  assert.equal(e!.type, P.NBD_REPLY_TYPE_ERROR);
  assert.equal(e!.payload.readUInt32BE(0), P.EINVAL);
  assert.match(e!.payload.subarray(6).toString(), /outside/);
});

for (const [what, send] of [
  ['a wrong option magic', (c: RawClient) => c.write(Buffer.concat([u64(0x1234n), u32(P.NBD_OPT_GO, 0)]))],
  ['a 4 GiB option length', (c: RawClient) => c.write(option(P.NBD_OPT_GO, Buffer.alloc(0), 0xffffffff))],
] as const) {
  test(`a client sending ${what} is disconnected; others are served`, async () => {
    const c = await connect();
    await greet(c);
    send(c);
    await c.waitClosed();
    await eventually(() =>
      events.some((e) => e.type === 'rejected' && e.error.code === 'FERRY_NBD_CLIENT_REJECTED'),
    );
    await stillServes();
  });
}

test('unknown client flags and a wrong request magic close the connection', async () => {
  const a = await connect();
  await greet(a, 0x80000001);
  await a.waitClosed();
  const b = await connect();
  await open(b, 'disk0');
  b.write(Buffer.alloc(28, 0x41));
  await b.waitClosed();
  await stillServes();
});

test('a client that never finishes the handshake is dropped after the timeout', async () => {
  const c = await connect();
  await c.take(18);
  const t0 = Date.now();
  await c.waitClosed(3000);
  assert.ok(Date.now() - t0 >= 300);
  await eventually(() => events.some((e) => e.type === 'rejected' && /handshake/.test(e.error.message)));
});

test('options: unknown → UNSUP, malformed → INVALID, unknown export → UNKNOWN, LIST, ABORT', async () => {
  const c = await connect();
  await greet(c);
  c.write(option(99, Buffer.from('whatever')));
  assert.equal((await optionReply(c, 99))[0], P.NBD_REP_ERR_UNSUP);
  c.write(option(P.NBD_OPT_GO, Buffer.concat([u32(5000), Buffer.alloc(10)])));
  assert.equal((await optionReply(c, P.NBD_OPT_GO))[0], P.NBD_REP_ERR_INVALID);
  c.write(option(P.NBD_OPT_SET_META_CONTEXT, Buffer.concat([str('disk0'), u32(1), str('base:allocation')])));
  assert.equal((await optionReply(c, P.NBD_OPT_SET_META_CONTEXT))[0], P.NBD_REP_ERR_INVALID); // no SR yet
  c.write(option(P.NBD_OPT_INFO, Buffer.concat([str('nope'), u16(0)])));
  assert.equal((await optionReply(c, P.NBD_OPT_INFO))[0], P.NBD_REP_ERR_UNKNOWN);
  c.write(option(P.NBD_OPT_LIST));
  const [t, p] = await optionReply(c, P.NBD_OPT_LIST);
  assert.equal(t, P.NBD_REP_SERVER);
  assert.equal(p.subarray(4, 4 + p.readUInt32BE(0)).toString(), 'disk0');
  assert.equal((await optionReply(c, P.NBD_OPT_LIST))[0], P.NBD_REP_ACK);
  c.write(option(P.NBD_OPT_ABORT));
  assert.equal((await optionReply(c, P.NBD_OPT_ABORT))[0], P.NBD_REP_ACK);
  await c.waitClosed();
});

test('NBD_OPT_EXPORT_NAME: the default export by "" works; an unknown name closes', async () => {
  const c = await connect();
  await greet(c);
  c.write(option(P.NBD_OPT_EXPORT_NAME, Buffer.alloc(0)));
  const r = await c.take(10); // NO_ZEROES: size and flags only
  assert.equal(Number(r.readBigUInt64BE(0)), data.length);
  c.write(request(P.NBD_CMD_READ, 0, 8));
  assert.equal(await simpleReply(c), 0);
  assert.deepEqual(await c.take(8), data.subarray(0, 8));
  const d = await connect();
  await greet(d);
  d.write(option(P.NBD_OPT_EXPORT_NAME, Buffer.from('nope')));
  await d.waitClosed();
});

test('connections beyond the limit are dropped; the others go on', async () => {
  const held: RawClient[] = [];
  for (let i = 0; i < 4; i++) {
    const c = await connect();
    await open(c, 'disk0');
    held.push(c);
  }
  const extra = await connect();
  await extra.waitClosed();
  await eventually(() => events.some((e) => e.type === 'rejected' && /too many/.test(e.error.message)));
  held[0]!.write(request(P.NBD_CMD_READ, 0, 4));
  assert.equal(await simpleReply(held[0]!), 0);
  await held[0]!.take(4);
  for (const c of held) c.close();
  await eventually(() => server.connections === 0);
  await stillServes();
});

test('requests in flight are bounded; a failing disk gives EIO and the connection goes on', async () => {
  let active = 0;
  let peak = 0;
  let fail = false;
  const slow: Disk = {
    virtualSize: 1 << 20,
    layers: [],
    names: ['slow'],
    async *map(offset = 0, length = 1 << 20) {
      yield { offset, length, kind: 'data', depth: 0, source: 'slow' };
    },
    async read(_offset: number, length: number) {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 5));
      active--;
      if (fail) throw new Error('disk on fire');
      return Buffer.alloc(length, 0x5a);
    },
    close: async () => {},
  };
  const s = await NbdServer.listen({
    path: join(dir, 'slow.sock'),
    exports: [{ name: 'slow', disk: slow }],
    maxInFlight: 3,
    onEvent: (e) => events.push(e),
  });
  try {
    const c = await connect(s.path);
    await open(c, 'slow');
    const n = 40;
    c.write(
      Buffer.concat(Array.from({ length: n }, (_, i) => request(P.NBD_CMD_READ, i * 512, 512, 0, i + 1))),
    );
    for (let i = 0; i < n; i++) {
      const r = await c.take(16);
      assert.equal(r.readUInt32BE(4), 0);
      await c.take(512);
    }
    assert.ok(peak >= 2 && peak <= 3, `peak ${peak}`);
    fail = true;
    c.write(request(P.NBD_CMD_READ, 0, 512));
    assert.equal(await simpleReply(c), P.EIO);
    fail = false;
    c.write(request(P.NBD_CMD_READ, 0, 512));
    assert.equal(await simpleReply(c), 0);
    await eventually(() => events.some((e) => e.type === 'disk-error'));
    assert.equal(s.stats.errors, 1);
  } finally {
    await s.close();
  }
});

test('a client that never reads its replies stalls at the reply-byte bound, then gets every reply', async () => {
  let reads = 0;
  const counting: Disk = {
    virtualSize: 256 << 20,
    layers: [],
    names: ['counting'],
    async *map(offset = 0, length = 256 << 20) {
      yield { offset, length, kind: 'data', depth: 0, source: 'counting' };
    },
    async read(offset: number, length: number) {
      reads++;
      return Buffer.alloc(length, offset >> 20);
    },
    close: async () => {},
  };
  const s = await NbdServer.listen({
    path: join(dir, 'stall.sock'),
    exports: [{ name: 'c', disk: counting }],
    maxInFlight: 1000, // only the byte bound applies
  });
  try {
    const c = await connect(s.path);
    await open(c, 'c');
    c.socket.pause(); // read nothing
    const n = 200;
    c.write(
      Buffer.concat(Array.from({ length: n }, (_, i) => request(P.NBD_CMD_READ, i << 20, 1 << 20, 0, i))),
    );
    await new Promise((r) => setTimeout(r, 500));
    // 32 MiB of replies in flight, plus what the kernel's socket buffers took.
    assert.ok(reads >= 32 && reads <= 40, `${reads} reads of 1 MiB before the client read anything`);
    c.socket.resume();
    for (let i = 0; i < n; i++) {
      assert.equal(await simpleReply(c, i), 0);
      const d = await c.take(1 << 20);
      assert.equal(d[0], i & 255);
    }
    assert.equal(reads, n);
  } finally {
    await s.close();
  }
});

test('close() drops clients and removes the socket', async () => {
  const s = await NbdServer.listen({ path: join(dir, 'gone.sock'), exports: [{ name: 'd', disk }] });
  const c = await connect(s.path);
  await open(c, 'd');
  await s.close();
  await c.waitClosed();
  await assert.rejects(RawClient.connect(s.path));
  await s.close(); // idempotent
});
