/**
 * The dialling end of a link (docs/connector-protocol.md): a remote connector or launch
 * host generates its key, trades a one-time token for a certificate, then keeps one
 * mutual-TLS link to the server up — reconnecting with backoff when it drops — and serves
 * its handlers over it. The state directory keeps the key and certificate (0600).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type TLSSocket } from 'node:tls';
import { LinkDownError, toFerryError } from '../errors/index.js';
import { LinkPeer, type Handler } from './peer.js';

export const HEARTBEAT_MS = 10_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
export const CONNECT_TIMEOUT_MS = 15_000;

export interface LinkIdentity {
  /** The connector or launch host id the certificate names. */
  readonly id: string;
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

export function dial(t: LinkTarget, id?: LinkIdentity): Promise<TLSSocket> {
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

/** The identity in `stateDir`, or a new one bought with `token` (the server decides the role). */
export async function enrol(
  stateDir: string,
  target: LinkTarget,
  token: string | undefined,
  descriptor: object,
): Promise<LinkIdentity> {
  const path = join(stateDir, 'identity.json');
  try {
    const stored = JSON.parse(await readFile(path, 'utf8')) as LinkIdentity & { connectorId?: string };
    // Identities written before launch hosts existed name the id `connectorId`.
    return { ...stored, id: stored.id ?? stored.connectorId };
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
    const r = result as { id: string; certPem: string; caPem: string };
    const id: LinkIdentity = {
      id: r.id,
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

/** What one connection serves: fresh per link, closed when it drops. */
export interface Served {
  readonly handlers: Record<string, Handler>;
  closeAll(): Promise<void>;
}

export interface KeepLinkedOptions {
  readonly signal: AbortSignal;
  readonly log?: ClientLog;
  /** The hello sent first on each link (what this end is and can do). */
  hello(): object | Promise<object>;
  /** The handlers of one link. */
  serve(): Served;
  /** Each link once its hello was answered (calls this end makes go through it). */
  onUp?(peer: LinkPeer): void;
  readonly heartbeatMs?: number;
}

/**
 * Keeps the link up until `signal` aborts: connect, say hello, heartbeat, serve; after a
 * drop, reconnect with exponential backoff. A refused certificate ends it (FERRY_ENROLMENT_REFUSED).
 */
export async function keepLinked(target: LinkTarget, id: LinkIdentity, o: KeepLinkedOptions): Promise<void> {
  let backoff = BACKOFF_MIN_MS;
  while (!o.signal.aborted) {
    try {
      const socket = await dial(target, id);
      const served = o.serve();
      const peer = new LinkPeer(socket, { handlers: served.handlers, compress: true });
      const down = new Promise<string>((resolve) => peer.onClose((err) => resolve(err.message)));
      const stop = () => peer.close();
      o.signal.addEventListener('abort', stop, { once: true });
      const beat = setInterval(() => peer.note('heartbeat'), o.heartbeatMs ?? HEARTBEAT_MS);
      try {
        await peer.call('hello', await o.hello(), undefined, { timeoutMs: CONNECT_TIMEOUT_MS });
        backoff = BACKOFF_MIN_MS;
        o.log?.info(`connected to ${target.host}:${target.port} as ${id.id}`);
        o.onUp?.(peer);
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
