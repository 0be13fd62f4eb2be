/**
 * The listener remote connectors dial (docs/connector-protocol.md). TLS with the
 * installation's server certificate; a client certificate is requested:
 *
 * - with a certificate from this installation's CA, issued at enrolment and not revoked,
 *   the link carries the connector's calls (the connector id is the certificate's);
 * - without one, the only call answered is `enrol` (a one-time token buys a certificate),
 *   and the link is closed soon after.
 *
 * Bounded: connections at once, time to finish the TLS handshake and to say hello.
 */
import type { X509Certificate } from 'node:crypto';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { LinkPeer } from '../connectors/index.js';
import { EnrolmentRefusedError, toFerryError } from '../errors/index.js';
import type { ConnectorService } from './connectors.js';
import type { CertificateAuthority, EnrolmentService } from './enrolment.js';

/** Connections at once (connectors plus enrolments in progress). */
const MAX_CONNECTIONS = 512;
/** A TLS handshake, or an enrolment, that takes longer than this is dropped. */
const HANDSHAKE_MS = 15_000;

export interface LinkServerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface LinkServerOptions {
  readonly ca: CertificateAuthority;
  /** The server certificate chain and key (DATA_DIR/tls). */
  readonly cert: string;
  readonly key: string;
  readonly connectors: ConnectorService;
  readonly enrolment: EnrolmentService;
  readonly log?: LinkServerLog;
}

export class LinkServer {
  readonly #o: LinkServerOptions;
  readonly #server: Server;
  readonly #peers = new Set<LinkPeer>();

  constructor(o: LinkServerOptions) {
    this.#o = o;
    this.#server = createServer(
      {
        cert: o.cert,
        key: o.key,
        ca: o.ca.caPem,
        requestCert: true,
        // Unauthenticated clients may still enrol; every other call checks `authorized`.
        rejectUnauthorized: false,
        handshakeTimeout: HANDSHAKE_MS,
        minVersion: 'TLSv1.2',
      },
      (socket) => void this.#accept(socket),
    );
    this.#server.maxConnections = MAX_CONNECTIONS;
    this.#server.on('tlsClientError', (err) =>
      o.log?.warn({ err: err.message }, 'connector link: TLS handshake failed'),
    );
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        const a = this.#server.address() as { address: string; port: number };
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  async close(): Promise<void> {
    for (const p of this.#peers) p.close();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  async #accept(socket: TLSSocket): Promise<void> {
    const ip = socket.remoteAddress;
    if (!socket.authorized) return this.#enrolOnly(socket);
    // A refused certificate still gets a coded answer to its hello (so the connector stops
    // retrying and says why) before the link is closed.
    let connectorId: string | undefined;
    let refusal: unknown;
    try {
      const raw = socket.getPeerX509Certificate() as X509Certificate | undefined;
      if (!raw) throw new EnrolmentRefusedError('no client certificate');
      connectorId = await this.#o.enrolment.connectorOf(raw);
    } catch (err) {
      refusal = err;
      const fe = toFerryError(err);
      this.#o.log?.warn({ ip, code: fe.code, err: fe.message }, 'connector link refused');
    }
    let said = false;
    const peer: LinkPeer = new LinkPeer(socket, {
      compress: true,
      handlers: {
        hello: async (p) => {
          if (refusal !== undefined || connectorId === undefined) {
            setTimeout(() => peer.close(), 200).unref();
            throw refusal;
          }
          said = true;
          await this.#o.connectors.attachRemote(connectorId, p, peer, ip);
          this.#o.log?.info({ connectorId, ip }, 'connector link up');
          return { result: { connectorId } };
        },
      },
      notes: {
        heartbeat: () => {
          if (said && connectorId) void this.#o.connectors.heartbeat(connectorId).catch(() => undefined);
        },
      },
    });
    this.#track(peer);
    const timer = setTimeout(() => {
      if (!said) peer.close();
    }, HANDSHAKE_MS);
    timer.unref();
    peer.onClose((err) => {
      clearTimeout(timer);
      if (said) this.#o.log?.info({ connectorId, reason: err.message }, 'connector link down');
    });
  }

  #enrolOnly(socket: TLSSocket): void {
    const peer: LinkPeer = new LinkPeer(socket, {
      handlers: {
        enrol: async (p) => {
          const out = await this.#o.enrolment.enrol(this.#o.ca, {
            token: p.token,
            publicKeyPem: p.publicKeyPem,
            descriptor: typeof p.descriptor === 'object' && p.descriptor !== null ? p.descriptor : {},
          });
          this.#o.log?.info({ connectorId: out.connectorId, ip: socket.remoteAddress }, 'connector enrolled');
          return { result: out };
        },
      },
    });
    this.#track(peer);
    setTimeout(() => peer.close(), HANDSHAKE_MS).unref();
  }

  #track(peer: LinkPeer): void {
    this.#peers.add(peer);
    peer.onClose(() => this.#peers.delete(peer));
  }
}
