/**
 * A scripted QEMU guest agent on a real unix socket, speaking qemu-ga's wire protocol
 * (one JSON command per line; a 0xFF byte flushes the parser; guest-sync-delimited
 * answers 0xFF then `{"return": id}`), for the guest-agent tests: the test guests have no
 * qemu-ga. It records every command in order and can look at the world (QEMU through a
 * second monitor) before it answers.
 */
import { createServer, type Server, type Socket } from 'node:net';

export interface FakeAgentOptions {
  /** answer: `{"return": fsCount}`; zero: `{"return": 0}`; error: a GenericError; hang: never answers. */
  readonly freeze: 'answer' | 'zero' | 'error' | 'hang';
  /** answer (default); error-once: the first thaw fails, later ones answer; hang: never answers. */
  readonly thaw?: 'answer' | 'error-once' | 'hang';
  /** Never answers guest-sync-delimited (a channel with no agent behind it). */
  readonly silent?: boolean;
  /** Bytes sent on every new connection, before anything else (an earlier client's leftovers). */
  readonly stale?: Buffer;
  readonly fsCount?: number;
  /** Runs when a command arrives, before it is answered. */
  readonly onCommand?: (command: string, connection: number) => Promise<void> | void;
}

export interface FakeAgent {
  readonly path: string;
  /** Commands in arrival order, as `name` (guest-sync-delimited carries no id here). */
  readonly commands: string[];
  /** The connection (1, 2, …) each command arrived on. */
  readonly connections: number[];
  /** Whether the guest would be frozen now. */
  readonly frozen: boolean;
  close(): Promise<void>;
}

/** Largest command line the fake accepts (it is a test double, not a target). */
const MAX_LINE = 64 * 1024;

export async function startFakeAgent(path: string, o: FakeAgentOptions): Promise<FakeAgent> {
  const commands: string[] = [];
  const connections: number[] = [];
  const sockets = new Set<Socket>();
  let frozen = false;
  let thaws = 0;
  let conn = 0;
  const server: Server = createServer((socket) => {
    const n = ++conn;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (o.stale) socket.write(o.stale);
    let buf = Buffer.alloc(0);
    let chain = Promise.resolve();
    const send = (v: unknown, delimited = false) => {
      if (socket.destroyed) return;
      const text = Buffer.from(`${JSON.stringify(v)}\n`);
      socket.write(delimited ? Buffer.concat([Buffer.from([0xff]), text]) : text);
    };
    const handle = async (text: string) => {
      let msg: { execute?: string; arguments?: { id?: number } };
      try {
        msg = JSON.parse(text) as typeof msg;
      } catch {
        send({ error: { class: 'GenericError', desc: 'JSON parse error' } });
        return;
      }
      const cmd = String(msg.execute);
      commands.push(cmd);
      connections.push(n);
      await o.onCommand?.(cmd, n);
      switch (cmd) {
        case 'guest-sync-delimited':
          if (!o.silent) send({ return: msg.arguments?.id }, true);
          return;
        case 'guest-fsfreeze-freeze':
          if (frozen) {
            send({
              error: { class: 'GenericError', desc: 'Command guest-fsfreeze-freeze has been disabled' },
            });
            return;
          }
          if (o.freeze === 'error') {
            send({
              error: { class: 'GenericError', desc: 'failed to freeze /srv: Device or resource busy' },
            });
            return;
          }
          // A hung freeze may have frozen some file systems already.
          frozen = o.freeze !== 'zero';
          if (o.freeze === 'answer') send({ return: o.fsCount ?? 2 });
          if (o.freeze === 'zero') send({ return: 0 });
          return;
        case 'guest-fsfreeze-thaw':
          thaws++;
          if (o.thaw === 'hang') return;
          if (o.thaw === 'error-once' && thaws === 1) {
            send({ error: { class: 'GenericError', desc: 'failed to thaw: transient' } });
            return;
          }
          send({ return: frozen ? (o.fsCount ?? 2) : 0 });
          frozen = false;
          return;
        default:
          send({ error: { class: 'CommandNotFound', desc: `The command ${cmd} has not been found` } });
      }
    };
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        // 0xFF resets the parser (qemu-ga's JSON lexer treats it as a flush).
        const ff = buf.indexOf(0xff);
        const nl = buf.indexOf(0x0a);
        if (ff >= 0 && (nl < 0 || ff < nl)) {
          buf = buf.subarray(ff + 1);
          continue;
        }
        if (nl < 0) break;
        const text = buf.subarray(0, nl).toString('utf8').trim();
        buf = buf.subarray(nl + 1);
        if (text) chain = chain.then(() => handle(text));
      }
      if (buf.length > MAX_LINE) socket.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return {
    path,
    commands,
    connections,
    get frozen() {
      return frozen;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
