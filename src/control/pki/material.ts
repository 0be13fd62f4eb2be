/**
 * TLS material in the data directory: a CA made on first start (10 years) and a server
 * certificate it issues (1 year, renewed on start when it nears expiry or when the listen
 * address is not among its names). Clients trust DATA_DIR/tls/ca.pem:
 * `aws … --ca-bundle DATA_DIR/tls/ca.pem`, or `ca` in the SDK's https agent.
 */
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { toFerryError } from '../../errors/index.js';
import { issueCertificate } from './x509.js';

const CA_DAYS = 3650;
const SERVER_DAYS = 365;
/** A server certificate with less than this left is replaced at start. */
const RENEW_BEFORE_MS = 30 * 86_400_000;

export interface TlsFiles {
  readonly caPath: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly cert: string;
  readonly key: string;
}

async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw toFerryError(err);
  }
}

/** The names a server certificate covers: loopback, this host, and the listen address. */
export function serverNames(listenHost: string): string[] {
  const names = new Set(['localhost', '127.0.0.1', '::1', hostname()]);
  if (listenHost && listenHost !== '0.0.0.0' && listenHost !== '::') names.add(listenHost);
  return [...names];
}

export async function ensureTlsMaterial(
  tlsDir: string,
  listenHost: string,
  now = new Date(),
): Promise<TlsFiles> {
  await mkdir(tlsDir, { recursive: true, mode: 0o700 });
  const caPath = join(tlsDir, 'ca.pem');
  const caKeyPath = join(tlsDir, 'ca.key');
  const certPath = join(tlsDir, 'server.pem');
  const keyPath = join(tlsDir, 'server.key');
  let caPem = await readOrUndefined(caPath);
  let caKeyPem = await readOrUndefined(caKeyPath);
  if (!caPem || !caKeyPem) {
    const ca = issueCertificate({ commonName: 'Ferry CA', days: CA_DAYS, ca: true, now });
    await writeFile(caKeyPath, ca.keyPem, { mode: 0o600 });
    await writeFile(caPath, ca.certPem, { mode: 0o644 });
    caPem = ca.certPem;
    caKeyPem = ca.keyPem;
  }
  const names = serverNames(listenHost);
  let cert = await readOrUndefined(certPath);
  let key = await readOrUndefined(keyPath);
  if (!cert || !key || !stillGood(cert, caPem, names, now)) {
    const caKey = createPrivateKey(caKeyPem);
    const issued = issueCertificate({
      commonName: names[names.length - 1] ?? 'localhost',
      days: SERVER_DAYS,
      ca: false,
      names,
      issuer: { commonName: 'Ferry CA', key: caKey, publicKey: createPublicKey(caKey) },
      now,
    });
    await writeFile(keyPath, issued.keyPem, { mode: 0o600 });
    await writeFile(certPath, issued.certPem + caPem, { mode: 0o644 });
    cert = issued.certPem + caPem;
    key = issued.keyPem;
  }
  return { caPath, certPath, keyPath, cert, key };
}

function stillGood(certPem: string, caPem: string, names: readonly string[], now: Date): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    if (!cert.verify(ca.publicKey)) return false;
    if (new Date(cert.validTo).getTime() - now.getTime() < RENEW_BEFORE_MS) return false;
    return names.every((n) => (/^[\d.]+$|:/.test(n) ? cert.checkIP(n) : cert.checkHost(n)) !== undefined);
  } catch {
    return false;
  }
}

/** The installation's CA (made by ensureTlsMaterial): what issues connector certificates. */
export async function loadCa(
  tlsDir: string,
): Promise<{ caPem: string; key: KeyObject; publicKey: KeyObject }> {
  const [caPem, keyPem] = await Promise.all([
    readFile(join(tlsDir, 'ca.pem'), 'utf8'),
    readFile(join(tlsDir, 'ca.key'), 'utf8'),
  ]);
  const key = createPrivateKey(keyPem);
  return { caPem, key, publicKey: createPublicKey(key) };
}
