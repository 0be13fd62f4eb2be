/**
 * The listener remote connectors and launch hosts dial (docs/connector-protocol.md). TLS
 * with the installation's server certificate; a client certificate is requested:
 *
 * - with a certificate from this installation's CA, issued at enrolment and not revoked,
 *   the link carries the connector's or host's calls (its id is the certificate's);
 * - without one, the only call answered is `enrol` (a one-time token buys a certificate),
 *   and the link is closed soon after.
 *
 * Bounded: connections at once, time to finish the TLS handshake and to say hello.
 */
import type { X509Certificate } from 'node:crypto';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { isRecord, LinkPeer, type Handler } from '../link/index.js';
import { EnrolmentRefusedError, toFerryError } from '../errors/index.js';
import type { ConnectorService } from './connectors.js';
import type { CertificateAuthority, EnrolmentService, EnrolRole } from './enrolment.js';

/** The server's side of remote launch hosts, as the listener needs it (hosts/service.ts). */
export interface LaunchHostLinks {
  /** What a host's link serves it (reads of its instances' images); closed when it drops. */
  serve(hostId: string): { handlers: Record<string, Handler>; closeAll(): Promise<void> };
  /** One-way notes a host sends (an instance ended, progress). */
  notes(hostId: string): Record<string, (params: Record<string, unknown>) => void>;
  attach(
    hostId: string,
    hello: Record<string, unknown>,
    peer: LinkPeer,
    ip: string | undefined,
  ): Promise<void>;
  heartbeat(hostId: string): Promise<void>;
}

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
  /** Remote launch hosts; without it, hosts are refused. */
  readonly hosts?: LaunchHostLinks;
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
    // A refused certificate still gets a coded answer to its hello (so the peer stops
    // retrying and says why) before the link is closed.
    let who: { role: EnrolRole; id: string } | undefined;
    let refusal: unknown;
    try {
      const raw = socket.getPeerX509Certificate() as X509Certificate | undefined;
      if (!raw) throw new EnrolmentRefusedError('no client certificate');
      who = await this.#o.enrolment.peerOf(raw);
      if (who.role === 'host' && !this.#o.hosts)
        throw new EnrolmentRefusedError('this server takes no remote launch hosts');
    } catch (err) {
      refusal = err;
      who = undefined;
      const fe = toFerryError(err);
      this.#o.log?.warn({ ip, code: fe.code, err: fe.message }, 'link refused');
    }
    let said = false;
    // A launch host reads the images of its instances from the server over its link.
    const served = who?.role === 'host' ? this.#o.hosts!.serve(who.id) : undefined;
    const peer: LinkPeer = new LinkPeer(socket, {
      compress: true,
      handlers: {
        ...served?.handlers,
        hello: async (p) => {
          if (refusal !== undefined || who === undefined) {
            setTimeout(() => peer.close(), 200).unref();
            throw refusal;
          }
          said = true;
          if (who.role === 'host') await this.#o.hosts!.attach(who.id, p, peer, ip);
          else await this.#o.connectors.attachRemote(who.id, p, peer, ip);
          this.#o.log?.info(
            { [who.role === 'host' ? 'hostId' : 'connectorId']: who.id, ip },
            `${who.role} link up`,
          );
          return { result: who.role === 'host' ? { hostId: who.id } : { connectorId: who.id } };
        },
      },
      notes: {
        heartbeat: () => {
          if (!said || !who) return;
          const beat =
            who.role === 'host' ? this.#o.hosts!.heartbeat(who.id) : this.#o.connectors.heartbeat(who.id);
          void beat.catch(() => undefined);
        },
        ...(who?.role === 'host' ? this.#o.hosts!.notes(who.id) : {}),
      },
    });
    this.#track(peer);
    const timer = setTimeout(() => {
      if (!said) peer.close();
    }, HANDSHAKE_MS);
    timer.unref();
    peer.onClose((err) => {
      clearTimeout(timer);
      void served?.closeAll();
      if (said && who) this.#o.log?.info({ id: who.id, reason: err.message }, `${who.role} link down`);
    });
  }

  #enrolOnly(socket: TLSSocket): void {
    const peer: LinkPeer = new LinkPeer(socket, {
      handlers: {
        enrol: async (p) => {
          const out = await this.#o.enrolment.enrol(this.#o.ca, {
            token: p.token,
            publicKeyPem: p.publicKeyPem,
            descriptor: isRecord(p.descriptor) ? p.descriptor : {},
          });
          this.#o.log?.info({ id: out.id, role: out.role, ip: socket.remoteAddress }, `${out.role} enrolled`);
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
