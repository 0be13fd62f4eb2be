/**
 * Enrolment of remote connectors (docs/connector-protocol.md): one-time tokens, stored
 * hashed, single use and expiring; a token buys one client certificate from the
 * installation's CA for a public key the connector generated (its private key never
 * leaves it). The link then accepts a connector only with the certificate it was enrolled
 * with, and never once it is disassociated.
 */
import { createHash, createPublicKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import type { ConnectorDescriptor } from '../connectors/index.js';
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

const hash = (token: string) => createHash('sha256').update(token).digest('hex');

export class EnrolmentService {
  readonly #db: Database;
  readonly #clock: Clock;

  constructor(db: Database, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  async createEnrolmentToken(input: { ttlSeconds?: number; description?: string }) {
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
    });
    return { enrolmentToken: token, expiresAt: now + ttl };
  }

  /** Burns the token and certifies the connector's key; registers the connector. */
  async enrol(
    ca: CertificateAuthority,
    input: { token: unknown; publicKeyPem: unknown; descriptor: Partial<ConnectorDescriptor> },
  ): Promise<{ connectorId: string; certPem: string; caPem: string }> {
    if (typeof input.token !== 'string' || input.token.length > 128)
      throw new EnrolmentRefusedError('no enrolment token given');
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey(String(input.publicKeyPem));
    } catch {
      throw new InvalidArgumentError('publicKeyPem is not a public key');
    }
    if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
      throw new InvalidArgumentError('connector keys are ECDSA P-256');
    const connectorId = newId.connector();
    const now = this.#clock.now();
    const issued = issueCertificate({
      commonName: connectorId,
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
      if (!(await r.enrolmentTokens.use(hash(input.token as string), connectorId, now)))
        throw new EnrolmentRefusedError('the enrolment token is unknown, used or expired');
      await r.connectors.insert({
        connectorId,
        kind: 'remote',
        version: String(d.version ?? 'unknown').slice(0, 64),
        capabilities: [],
        vmManagerId: String(d.vmManagerId ?? connectorId).slice(0, 256),
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
    return { connectorId, certPem: issued.certPem, caPem: ca.caPem };
  }

  /** The connector a verified client certificate belongs to, if it may connect. */
  async connectorOf(cert: X509Certificate): Promise<string> {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
    const c = cn ? await repositories(this.#db).connectors.get(cn) : undefined;
    if (!c || c.kind !== 'remote' || c.certSerial !== cert.serialNumber)
      throw new EnrolmentRefusedError('this certificate was not issued to an enrolled connector');
    if (c.disassociatedAt !== null)
      throw new EnrolmentRefusedError(`connector ${c.connectorId} was disassociated; enrol it again`);
    return c.connectorId;
  }
}
