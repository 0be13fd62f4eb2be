/**
 * X.509 v3 certificates (RFC 5280) signed with ECDSA P-256 / SHA-256, built with
 * node:crypto alone: a CA for a Ferry installation and server certificates it issues.
 * Extensions: basicConstraints and keyUsage (critical), extKeyUsage serverAuth (or
 * clientAuth for connectors' certificates, docs/connector-protocol.md), subjectAltName
 * (DNS names and IP addresses), subject and authority key identifiers.
 */
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { isIP } from 'node:net';
import { bits, boolTrue, explicit, octets, oid, seq, set, time, tlv, uint, utf8 } from './der.js';

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
} as const;

export interface Issued {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CertificateSpec {
  readonly commonName: string;
  readonly days: number;
  readonly ca: boolean;
  /** DNS names and IP addresses (subjectAltName); server certificates only. */
  readonly names?: readonly string[];
  /** The issuing CA; absent = self-signed. */
  readonly issuer?: { readonly commonName: string; readonly key: KeyObject; readonly publicKey: KeyObject };
  readonly now?: Date;
  /** A client (TLS clientAuth) certificate instead of a server one. */
  readonly client?: boolean;
  /**
   * Certify this public key (its holder keeps the private key: enrolment) instead of a
   * new key pair; `keyPem` is then empty. P-256 keys only.
   */
  readonly subjectPublicKey?: KeyObject;
}

const name = (cn: string) =>
  seq(set(seq(oid(OID.organization), utf8('Ferry'))), set(seq(oid(OID.commonName), utf8(cn))));

const extension = (id: string, critical: boolean, value: Buffer) =>
  seq(oid(id), ...(critical ? [boolTrue()] : []), octets(value));

/** SHA-1 of the subjectPublicKey bits: the usual key identifier (RFC 5280 §4.2.1.2 method 1). */
function keyId(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // The EC point is the last 65 bytes of a P-256 SPKI (uncompressed point).
  return createHash('sha1')
    .update(spki.subarray(spki.length - 65))
    .digest();
}

function altName(n: string): Buffer {
  const v = isIP(n);
  if (v === 4) return tlv(0x87, Buffer.from(n.split('.').map(Number)));
  if (v === 6) return tlv(0x87, ipv6Bytes(n));
  return tlv(0x82, Buffer.from(n, 'ascii'));
}

function ipv6Bytes(addr: string): Buffer {
  const [head = '', tail = ''] = addr.split('::');
  const h = head ? head.split(':') : [];
  const t = addr.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

export function issueCertificate(spec: CertificateSpec): Issued & { key?: KeyObject; publicKey: KeyObject } {
  const pair = spec.subjectPublicKey ? undefined : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicKey = spec.subjectPublicKey ?? (pair as { publicKey: KeyObject }).publicKey;
  const privateKey = pair?.privateKey;
  const now = spec.now ?? new Date();
  const notBefore = new Date(now.getTime() - 3600_000); // tolerate slightly slow clocks
  const notAfter = new Date(now.getTime() + spec.days * 86_400_000);
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f;
  const issuerName = spec.issuer?.commonName ?? spec.commonName;
  const signer = spec.issuer?.key ?? privateKey;
  if (!signer) throw new Error('a certificate for a given public key needs an issuer');
  const issuerKeyId = keyId(spec.issuer?.publicKey ?? publicKey);
  const exts = [
    extension(OID.basicConstraints, true, spec.ca ? seq(boolTrue()) : seq()),
    // CA: digitalSignature, keyCertSign, cRLSign; server: digitalSignature.
    extension(OID.keyUsage, true, spec.ca ? bits(Buffer.from([0x86]), 1) : bits(Buffer.from([0x80]), 7)),
    ...(spec.ca
      ? []
      : [extension(OID.extKeyUsage, false, seq(oid(spec.client ? OID.clientAuth : OID.serverAuth)))]),
    ...(spec.names?.length ? [extension(OID.subjectAltName, false, seq(...spec.names.map(altName)))] : []),
    extension(OID.subjectKeyId, false, octets(keyId(publicKey))),
    extension(OID.authorityKeyId, false, seq(tlv(0x80, issuerKeyId))),
  ];
  const algorithm = seq(oid(OID.ecdsaWithSha256));
  const tbs = seq(
    explicit(0, uint(Buffer.from([2]))),
    uint(serial),
    algorithm,
    name(issuerName),
    seq(time(notBefore), time(notAfter)),
    name(spec.commonName),
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...exts)),
  );
  const signature = sign('sha256', tbs, signer); // DER-encoded ECDSA signature
  const der = seq(tbs, algorithm, bits(signature));
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .trimEnd();
  return {
    certPem: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`,
    keyPem: privateKey ? (privateKey.export({ type: 'pkcs8', format: 'pem' }) as string) : '',
    ...(privateKey ? { key: privateKey } : {}),
    publicKey: privateKey ? createPublicKey(privateKey) : publicKey,
  };
}
