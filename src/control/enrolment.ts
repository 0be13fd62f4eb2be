/**
 * Enrolment of remote connectors and launch hosts (docs/connector-protocol.md): one-time
 * tokens, stored hashed, single use and expiring, each for one role; a token buys one
 * client certificate from the installation's CA for a public key the peer generated (its
 * private key never leaves it). The link then accepts a peer only with the certificate it
 * was enrolled with, and never once it is disassociated.
 */
import { createHash, createPublicKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { repositories, type Database } from '../db/index.js';
import { EnrolmentRefusedError, InvalidArgumentError } from '../errors/index.js';
import type { Clock } from './clock.js';
import { newId } from './ids.js';
import { issueCertificate } from './pki/x509.js';

/** Tokens live 1 hour by default, at most 7 days (enrolment is a setup step, not a standing key). */
export const DEFAULT_TOKEN_TTL_MS = 3600_000;
const MAX_TOKEN_TTL_MS = 7 * 86_400_000;
/** Connector certificates last 90 days; a connector enrols again (new token) after that. */
export const CONNECTOR_CERT_DAYS = 90;

export interface CertificateAuthority {
  readonly caPem: string;
  readonly key: KeyObject;
  readonly publicKey: KeyObject;
}

export type EnrolRole = 'connector' | 'host';

const hash = (token: string) => createHash('sha256').update(token).digest('hex');

export class EnrolmentService {
  readonly #db: Database;
  readonly #clock: Clock;

  constructor(db: Database, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  async createEnrolmentToken(input: { ttlSeconds?: number; description?: string; role?: EnrolRole }) {
    const role = input.role ?? 'connector';
    if (role !== 'connector' && role !== 'host')
      throw new InvalidArgumentError('role is connector or host', { member: 'role' });
    const ttl = input.ttlSeconds === undefined ? DEFAULT_TOKEN_TTL_MS : input.ttlSeconds * 1000;
    if (!Number.isInteger(ttl) || ttl < 60_000 || ttl > MAX_TOKEN_TTL_MS)
      throw new InvalidArgumentError('ttlSeconds must be 60 … 604800 (7 days)', { member: 'ttlSeconds' });
    const token = `fce_${randomBytes(32).toString('base64url')}`;
    const now = this.#clock.now();
    await repositories(this.#db).enrolmentTokens.insert({
      tokenHash: hash(token),
      description: (input.description ?? '').slice(0, 256),
      createdAt: now,
      expiresAt: now + ttl,
      usedAt: null,
      usedBy: null,
      role,
    });
    return { enrolmentToken: token, expiresAt: now + ttl, role };
  }

  /** Burns the token and certifies the peer's key; registers the connector or launch host. */
  async enrol(
    ca: CertificateAuthority,
    input: { token: unknown; publicKeyPem: unknown; descriptor: Record<string, unknown> },
  ): Promise<{ id: string; role: EnrolRole; connectorId?: string; certPem: string; caPem: string }> {
    if (typeof input.token !== 'string' || input.token.length > 128)
      throw new EnrolmentRefusedError('no enrolment token given');
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey(String(input.publicKeyPem));
    } catch {
      throw new InvalidArgumentError('publicKeyPem is not a public key');
    }
    if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
      throw new InvalidArgumentError('connector and launch host keys are ECDSA P-256');
    const tokenHash = hash(input.token);
    const role = (await repositories(this.#db).enrolmentTokens.get(tokenHash))?.role;
    if (!role) throw new EnrolmentRefusedError('the enrolment token is unknown, used or expired');
    const id = role === 'host' ? newId.host() : newId.connector();
    const now = this.#clock.now();
    const issued = issueCertificate({
      commonName: id,
      days: CONNECTOR_CERT_DAYS,
      ca: false,
      client: true,
      subjectPublicKey: publicKey,
      issuer: { commonName: 'Ferry CA', key: ca.key, publicKey: ca.publicKey },
      now: new Date(now),
    });
    const serial = new X509Certificate(issued.certPem).serialNumber;
    const d = input.descriptor;
    await this.#db.transaction(async (tx) => {
      const r = repositories(tx);
      if (!(await r.enrolmentTokens.use(tokenHash, id, now)))
        throw new EnrolmentRefusedError('the enrolment token is unknown, used or expired');
      if (role === 'host') {
        await r.launchHosts.insert({
          hostId: id,
          name: String(d.name ?? id).slice(0, 256),
          version: String(d.version ?? 'unknown').slice(0, 64),
          facts: {},
          ipAddress: null,
          certSerial: serial,
          enrolledAt: now,
          lastHeartbeatAt: now,
          disassociatedAt: null,
        });
        return;
      }
      await r.connectors.insert({
        connectorId: id,
        kind: 'remote',
        version: String(d.version ?? 'unknown').slice(0, 64),
        capabilities: [],
        vmManagerId: String(d.vmManagerId ?? id).slice(0, 256),
        vmManagerName: String(d.vmManagerName ?? 'remote').slice(0, 256),
        vmManagerType: null,
        ipAddress: null,
        macAddress: null,
        associatedOn: now,
        lastHeartbeatAt: now,
        disassociatedAt: null,
        certSerial: serial,
      });
    });
    // `connectorId`: what connectors before launch hosts read.
    return {
      id,
      role,
      ...(role === 'connector' ? { connectorId: id } : {}),
      certPem: issued.certPem,
      caPem: ca.caPem,
    };
  }

  /** Who a verified client certificate belongs to, if it may connect. */
  async peerOf(cert: X509Certificate): Promise<{ role: EnrolRole; id: string }> {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
    if (cn?.startsWith('h-')) {
      const h = await repositories(this.#db).launchHosts.get(cn);
      if (!h || h.certSerial !== cert.serialNumber)
        throw new EnrolmentRefusedError('this certificate was not issued to an enrolled launch host');
      if (h.disassociatedAt !== null)
        throw new EnrolmentRefusedError(`launch host ${h.hostId} was disassociated; enrol it again`);
      return { role: 'host', id: h.hostId };
    }
    const c = cn ? await repositories(this.#db).connectors.get(cn) : undefined;
    if (!c || c.kind !== 'remote' || c.certSerial !== cert.serialNumber)
      throw new EnrolmentRefusedError('this certificate was not issued to an enrolled connector');
    if (c.disassociatedAt !== null)
      throw new EnrolmentRefusedError(`connector ${c.connectorId} was disassociated; enrol it again`);
    return { role: 'connector', id: c.connectorId };
  }
}
