/**
 * The remote connector process's side of enrolment and of the link (docs/connector-protocol.md):
 * it generates its key, trades a one-time token for a certificate, then keeps one mutual-TLS
 * link to the server up — reconnecting with backoff when it drops — and serves its local
 * connector over it. The state directory keeps the key and certificate (0600).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type TLSSocket } from 'node:tls';
import { LinkDownError, toFerryError } from '../../errors/index.js';
import type { Connector, ConnectorDescriptor } from '../types.js';
import { serveConnector } from './agent.js';
import { LinkPeer } from './peer.js';
import { throttled, type Throttle } from './throttle.js';

export const HEARTBEAT_MS = 10_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const CONNECT_TIMEOUT_MS = 15_000;

export interface LinkIdentity {
  readonly connectorId: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly caPem: string;
}

export interface LinkTarget {
  readonly host: string;
  readonly port: number;
  /** The server's CA (DATA_DIR/tls/ca.pem of the server). */
  readonly caPem: string;
}

export interface ClientLog {
  info(msg: string): void;
  warn(msg: string): void;
}

function dial(t: LinkTarget, id?: LinkIdentity): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: t.host,
      port: t.port,
      ca: id?.caPem ?? t.caPem,
      ...(id ? { cert: id.certPem, key: id.keyPem } : {}),
      minVersion: 'TLSv1.2',
    });
    const timer = setTimeout(
      () =>
        socket.destroy(
          new LinkDownError(`no TLS connection to ${t.host}:${t.port} within ${CONNECT_TIMEOUT_MS} ms`),
        ),
      CONNECT_TIMEOUT_MS,
    );
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(toFerryError(err));
    });
  });
}

/** The identity in `stateDir`, or a new one bought with `token`. */
export async function enrol(
  stateDir: string,
  target: LinkTarget,
  token: string | undefined,
  descriptor: Partial<ConnectorDescriptor>,
): Promise<LinkIdentity> {
  const path = join(stateDir, 'identity.json');
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LinkIdentity;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw toFerryError(err);
  }
  if (!token) throw new LinkDownError(`not enrolled yet (${path} missing): give --enrol-token`);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const peer = new LinkPeer(await dial(target));
  try {
    const { result } = await peer.call(
      'enrol',
      { token, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }), descriptor },
      undefined,
      { timeoutMs: CONNECT_TIMEOUT_MS },
    );
    const r = result as { connectorId: string; certPem: string; caPem: string };
    const id: LinkIdentity = {
      connectorId: r.connectorId,
      certPem: r.certPem,
      caPem: r.caPem,
      keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    };
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    await writeFile(path, JSON.stringify(id), { mode: 0o600 });
    return id;
  } finally {
    peer.close();
  }
}

/**
 * Keeps the link up until `signal` aborts: connect, say hello, heartbeat, serve; after a
 * drop, reconnect with exponential backoff. `onUp` is told each time the link is up.
 */
export async function runLink(
  target: LinkTarget,
  id: LinkIdentity,
  connector: Connector,
  o: {
    signal: AbortSignal;
    log?: ClientLog;
    onUp?: () => void;
    heartbeatMs?: number;
    /** Paces disk data (--bandwidth, --bandwidth-schedule). */
    throttle?: Throttle;
  },
): Promise<void> {
  let backoff = BACKOFF_MIN_MS;
  while (!o.signal.aborted) {
    try {
      const socket = await dial(target, id);
      const served = serveConnector(connector);
      const handlers = o.throttle ? throttled(served.handlers, o.throttle) : served.handlers;
      const peer = new LinkPeer(socket, { handlers, compress: true });
      const down = new Promise<string>((resolve) => peer.onClose((err) => resolve(err.message)));
      const stop = () => peer.close();
      o.signal.addEventListener('abort', stop, { once: true });
      const beat = setInterval(() => peer.note('heartbeat'), o.heartbeatMs ?? HEARTBEAT_MS);
      try {
        const roles = {
          snapshot: connector.source.snapshot !== undefined,
          release: connector.source.release !== undefined,
          sweep: connector.source.sweep !== undefined,
        };
        await peer.call('hello', { ...connector.descriptor, roles }, undefined, {
          timeoutMs: CONNECT_TIMEOUT_MS,
        });
        backoff = BACKOFF_MIN_MS;
        o.log?.info(`connected to ${target.host}:${target.port} as ${id.connectorId}`);
        o.onUp?.();
        const why = await down;
        if (!o.signal.aborted) o.log?.warn(`link down (${why}); reconnecting`);
      } finally {
        clearInterval(beat);
        o.signal.removeEventListener('abort', stop);
        peer.close();
        await served.closeAll();
      }
    } catch (err) {
      const fe = toFerryError(err);
      if (fe.code === 'FERRY_ENROLMENT_REFUSED') throw fe;
      o.log?.warn(`cannot reach ${target.host}:${target.port}: ${fe.message}; retrying in ${backoff} ms`);
    }
    await sleep(backoff, undefined, { signal: o.signal }).catch(() => undefined);
    backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
  }
}
