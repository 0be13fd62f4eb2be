/**
 * A scripted NBD server on a real unix socket, for tests of the client's handling of
 * hostile or unusual servers. It speaks a correct fixed-newstyle handshake unless told
 * otherwise, then hands each transmission request to `onRequest`, which writes whatever
 * reply bytes the test wants (see the reply builders below).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './qemu.js';

export interface FakeRequest {
  readonly type: number;
  readonly flags: number;
  /** The 8 cookie bytes, to echo in replies. */
  readonly cookie: Buffer;
  readonly offset: number;
  readonly length: number;
}

export interface FakeNbdOptions {
  readonly size?: number;
  readonly transmissionFlags?: number;
  /** NBD_INFO_BLOCK_SIZE to send, if any. */
  readonly blockSize?: { min: number; preferred: number; max: number };
  readonly structured?: boolean;
  /** Metadata contexts the export offers, with the ids to assign. */
  readonly contexts?: Readonly<Record<string, number>>;
  /** Replaces the 18-byte greeting. */
  readonly greeting?: Buffer;
  /** Returns raw bytes to send instead of the normal reply to an option (undefined: normal). */
  readonly onOption?: (option: number, data: Buffer) => Buffer | undefined;
  readonly onRequest?: (req: FakeRequest, sock: Socket) => void;
}

const u32 = (...v: number[]) => {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, i) => b.writeUInt32BE(x >>> 0, 4 * i));
  return b;
};
const u64 = (v: number | bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
};
const u16 = (v: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
};

export function optionReply(option: number, type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([u64(0x0003e889045565a9n), u32(option, type, payload.length), payload]);
}

export function structured(
  flags: number,
  type: number,
  cookie: Buffer,
  payload: Buffer,
  length = payload.length,
): Buffer {
  return Buffer.concat([u32(0x668e33ef), u16(flags), u16(type), cookie, u32(length), payload]);
}
export const dataChunk = (cookie: Buffer, offset: number, data: Buffer, done = true) =>
  structured(done ? 1 : 0, 1, cookie, Buffer.concat([u64(offset), data]));
export const holeChunk = (cookie: Buffer, offset: number, length: number, done = true) =>
  structured(done ? 1 : 0, 2, cookie, Buffer.concat([u64(offset), u32(length)]));
export const errorChunk = (cookie: Buffer, errno: number, message: string, type = 0x8001) =>
  structured(
    1,
    type,
    cookie,
    Buffer.concat([u32(errno), u16(Buffer.byteLength(message)), Buffer.from(message)]),
  );
export const statusChunk = (cookie: Buffer, contextId: number, extents: [number, number][], done = true) =>
  structured(done ? 1 : 0, 5, cookie, Buffer.concat([u32(contextId), ...extents.map(([l, f]) => u32(l, f))]));
export const simpleReply = (cookie: Buffer, errno: number, data: Buffer = Buffer.alloc(0)) =>
  Buffer.concat([u32(0x67446698, errno), cookie, data]);

/** Starts the server; returns its socket path and a close function. */
export async function fakeNbd(o: FakeNbdOptions): Promise<{ path: string; server: Server; close(): void }> {
  const path = join(await tempDir('ferry-nbd-fake-'), 'nbd.sock');
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
    sock.write(o.greeting ?? Buffer.concat([Buffer.from('NBDMAGICIHAVEOPT'), u16(3)]));
    let buf = Buffer.alloc(0);
    let phase: 'flags' | 'options' | 'transmission' = 'flags';
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (phase === 'flags') {
          if (buf.length < 4) return;
          buf = buf.subarray(4);
          phase = 'options';
        } else if (phase === 'options') {
          if (buf.length < 16) return;
          const len = buf.readUInt32BE(12);
          if (buf.length < 16 + len) return;
          const option = buf.readUInt32BE(8);
          const data = buf.subarray(16, 16 + len);
          buf = buf.subarray(16 + len);
          const custom = o.onOption?.(option, data);
          if (custom) sock.write(custom);
          else if (option === 8) sock.write(optionReply(8, o.structured === false ? 0x80000001 : 1));
          else if (option === 10) {
            const nameLen = data.readUInt32BE(0);
            const n = data.readUInt32BE(4 + nameLen);
            let at = 8 + nameLen;
            for (let i = 0; i < n; i++) {
              const ql = data.readUInt32BE(at);
              const q = data.subarray(at + 4, at + 4 + ql).toString();
              at += 4 + ql;
              const id = o.contexts?.[q];
              if (id !== undefined) sock.write(optionReply(10, 4, Buffer.concat([u32(id), Buffer.from(q)])));
            }
            sock.write(optionReply(10, 1));
          } else if (option === 7) {
            sock.write(
              optionReply(
                7,
                3,
                Buffer.concat([u16(0), u64(o.size ?? 1 << 20), u16(o.transmissionFlags ?? 1)]),
              ),
            );
            if (o.blockSize) {
              const b = o.blockSize;
              sock.write(optionReply(7, 3, Buffer.concat([u16(3), u32(b.min, b.preferred, b.max)])));
            }
            sock.write(optionReply(7, 1));
            phase = 'transmission';
          } else sock.write(optionReply(option, 0x80000001));
        } else {
          if (buf.length < 28) return;
          const req: FakeRequest = {
            flags: buf.readUInt16BE(4),
            type: buf.readUInt16BE(6),
            cookie: Buffer.from(buf.subarray(8, 16)),
            offset: Number(buf.readBigUInt64BE(16)),
            length: buf.readUInt32BE(24),
          };
          buf = buf.subarray(28);
          if (req.type === 2) sock.end();
          else o.onRequest?.(req, sock);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    path,
    server,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
