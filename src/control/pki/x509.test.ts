import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createServer, connect } from 'node:tls';
import { tempDir } from '../../../test/helpers/qemu.js';
import { ensureTlsMaterial } from './material.js';
import { issueCertificate } from './x509.js';

test('a CA and a server certificate that Node (OpenSSL) parses, verifies and matches by name and IP', () => {
  const ca = issueCertificate({ commonName: 'Test CA', days: 10, ca: true });
  const server = issueCertificate({
    commonName: 'srv',
    days: 5,
    ca: false,
    names: ['localhost', '127.0.0.1', '::1', 'ferry.example'],
    issuer: { commonName: 'Test CA', key: ca.key!, publicKey: ca.publicKey },
  });
  const caCert = new X509Certificate(ca.certPem);
  const cert = new X509Certificate(server.certPem);
  assert.equal(caCert.ca, true);
  assert.equal(cert.ca, false);
  assert.ok(caCert.verify(caCert.publicKey), 'the CA is self-signed');
  assert.ok(cert.verify(caCert.publicKey), 'the server certificate is signed by the CA');
  assert.ok(cert.checkIssued(caCert));
  assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(cert.checkIP('::1'), '::1');
  assert.equal(cert.checkHost('ferry.example'), 'ferry.example');
  assert.equal(cert.checkHost('other.example'), undefined);
  assert.ok(new Date(cert.validTo).getTime() - Date.now() > 4 * 86_400_000);
  assert.match(cert.keyUsage?.join(',') ?? '', /1\.3\.6\.1\.5\.5\.7\.3\.1/);
});

test('a TLS handshake succeeds against the CA and fails without it', async () => {
  const dir = await tempDir();
  const m = await ensureTlsMaterial(dir, '127.0.0.1');
  const server = createServer({ cert: m.cert, key: m.key }, (s) => s.end('hello'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const talk = (ca?: string) =>
    new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, ...(ca ? { ca } : {}) }, () => undefined);
      let data = '';
      s.on('data', (d: Buffer) => (data += d.toString()));
      s.on('end', () => resolve(data));
      s.on('error', reject);
    });
  try {
    const { readFile } = await import('node:fs/promises');
    assert.equal(await talk(await readFile(m.caPath, 'utf8')), 'hello');
    await assert.rejects(talk(), /self[- ]signed|unable to verify|certificate/i);
  } finally {
    server.close();
  }
  // A second start reuses the material; a new listen name renews only the server certificate.
  const again = await ensureTlsMaterial(dir, '127.0.0.1');
  assert.equal(again.cert, m.cert);
  const renamed = await ensureTlsMaterial(dir, 'ferry.internal');
  assert.notEqual(renamed.cert, m.cert);
  assert.equal(new X509Certificate(renamed.cert).checkHost('ferry.internal'), 'ferry.internal');
});
