/**
 * What the remote connector link costs: the mixed disk (bench/mixed-disk.ts) read whole —
 * its data extents in 4 MiB reads, as a run reads a full disk — from a folder connector in
 * process (the reference) and through the link (agent ↔ RemoteConnector over mutual TLS on
 * loopback, zstd bodies), in the same run. Prints both times, the ratio, and the bytes that
 * crossed the wire against the disk bytes read.
 *
 *   node dist/bench/connector-link.js [--size 1G] [--dir DIR]
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { createFolderConnector, RemoteConnector, serveConnector } from '../src/connectors/index.js';
import { LinkPeer } from '../src/link/index.js';
import type { Disk } from '../src/disk/index.js';
import { issueCertificate } from '../src/control/pki/x509.js';
import { ensureMixedDisk } from './mixed-disk.js';

const { values } = parseArgs({ options: { size: { type: 'string' }, dir: { type: 'string' } } });
const size = parseSize(values.size ?? '1G');
const dir = values.dir ?? join(tmpdir(), 'ferry-bench-link');

function parseSize(s: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(s);
  if (!m) throw new Error(`bad size ${s}`);
  return Number(m[1]) * { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] ?? '').toUpperCase() as ''];
}

async function readAll(d: Disk): Promise<{ seconds: number; bytes: number; sha: string }> {
  const h = createHash('sha256');
  const t0 = performance.now();
  let bytes = 0;
  for await (const e of d.map()) {
    if (e.kind !== 'data' && e.kind !== 'compressed') continue;
    for (let at = e.offset; at < e.offset + e.length; at += 4 << 20) {
      const n = Math.min(4 << 20, e.offset + e.length - at);
      h.update(await d.read(at, n));
      bytes += n;
    }
  }
  return { seconds: (performance.now() - t0) / 1000, bytes, sha: h.digest('hex') };
}

async function main(): Promise<void> {
  await mkdir(join(dir, 'vm'), { recursive: true });
  await ensureMixedDisk(join(dir, 'vm', 'disk.raw'), size);
  const local = await createFolderConnector({ connectorId: 'c-bench', imagesDir: dir, version: 'bench' });

  // Mutual TLS as `ferry server --connector-listen` and `ferry connector` set it up.
  const ca = issueCertificate({ commonName: 'Bench CA', days: 1, ca: true });
  const issuer = { commonName: 'Bench CA', key: ca.key!, publicKey: ca.publicKey };
  const srv = issueCertificate({ commonName: 'localhost', days: 1, ca: false, names: ['127.0.0.1'], issuer });
  const cli = issueCertificate({ commonName: 'c-bench', days: 1, ca: false, client: true, issuer });
  let wire = 0;
  const accepted = new Promise<TLSSocket>((resolve) => {
    const server = createServer(
      { cert: srv.certPem, key: srv.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true },
      (s) => {
        s.on('data', (c: Buffer) => (wire += c.length));
        resolve(s);
        server.close();
      },
    ).listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      const socket = connect({ host: '127.0.0.1', port, ca: ca.certPem, cert: cli.certPem, key: cli.keyPem });
      socket.once('secureConnect', () => {
        const agent = new LinkPeer(socket, { handlers: serveConnector(local).handlers, compress: true });
        void agent;
      });
    });
  });
  const remote = new RemoteConnector({ ...local.descriptor, kind: 'remote' }, { roles: {} });
  remote.attach(new LinkPeer(await accepted, { compress: true }));

  const [vm] = await local.inventory.collect();
  const a = await local.source.openDisk(vm!.vmId, 0);
  const ref = await readAll(a);
  await a.close();
  const b = await remote.source.openDisk(vm!.vmId, 0);
  const over = await readAll(b);
  await b.close();
  if (over.sha !== ref.sha) throw new Error('the link read different bytes');
  const mb = (x: { bytes: number; seconds: number }) => (x.bytes / x.seconds / 1e6).toFixed(0);
  console.log(`disk ${size} B, ${ref.bytes} B of data extents read`);
  console.log(`in process:   ${ref.seconds.toFixed(2)} s  (${mb(ref)} MB/s)`);
  console.log(
    `through link: ${over.seconds.toFixed(2)} s  (${mb(over)} MB/s), ratio ${(over.seconds / ref.seconds).toFixed(2)}×`,
  );
  console.log(
    `on the wire:  ${wire} B = ${((100 * wire) / over.bytes).toFixed(1)} % of the data (zstd, TLS)`,
  );
  remote.detach();
}

await main();
