/**
 * API latency under load (control-plane issue): a catalog of 10 000 servers, GetServers
 * at 200 requests/s from a separate process for 10 s, against a real `ferry server`.
 * Prints p50/p90/p99/max; the target is p99 ≤ 50 ms.
 *
 *   npm run build && node dist/bench/api-latency.js [--servers 10000] [--rate 200] [--seconds 10]
 *       [--database postgres://…]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openControlPlane, serverIdFor } from '../src/control/index.js';
import { repositories } from '../src/db/index.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    servers: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    database: { type: 'string' },
  },
});
const SERVERS = Number(values.servers);
const dataDir = await mkdtemp(join(tmpdir(), 'ferry-bench-api-'));

// 1. A data directory whose catalog holds SERVERS servers, and an access key.
const opened = await openControlPlane({ dataDir, ...(values.database ? { database: values.database } : {}) });
const key = await opened.control.keys.create({ description: 'bench' });
const t0 = performance.now();
await opened.control.db.transaction(async (tx) => {
  const r = repositories(tx);
  for (let i = 0; i < SERVERS; i++) {
    const vmId = `vm${String(i).padStart(6, '0')}`;
    await r.servers.upsert({
      serverId: serverIdFor('bench-vmm', vmId),
      connectorId: 'c-bench',
      vmManagerId: 'bench-vmm',
      vmId,
      sortKey: `bench-vmm/${vmId}`,
      vmName: `server ${i}`,
      vmManagerName: 'bench',
      vmManagerType: 'VSPHERE',
      vmPath: `/dc/vm/${vmId}`,
      facts: {
        disks: [
          {
            name: 'disk0.vmdk',
            format: 'vmdk',
            subformat: 'monolithicSparse',
            virtualSize: 1 << 30,
            fileSize: 1 << 20,
            files: [],
          },
        ],
        nics: [],
        warnings: [],
      },
      replicationJobId: null,
      replicationJobTerminated: false,
      importedAt: Date.now(),
    });
  }
  await r.settings.set('catalog.status', 'AVAILABLE');
  await r.settings.set('catalog.lastModifiedOn', String(Date.now()));
});
process.stdout.write(
  `catalog: ${SERVERS} servers in ${((performance.now() - t0) / 1000).toFixed(1)} s (${opened.databaseDescription})\n`,
);
await opened.close();

// 2. The server.
const server = spawn(
  process.execPath,
  [
    join(ROOT, 'bin', 'ferry'),
    'server',
    '--data-dir',
    dataDir,
    '--listen',
    '127.0.0.1:0',
    '--insecure-http',
    '--log-level',
    'warn',
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const url = await new Promise<string>((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const m = /listening on (http:\/\/\S+)/.exec(out);
    if (m) resolve(m[1] as string);
  });
  server.on('exit', (code) => reject(new Error(`server exited ${code}`)));
});

// 3. Load from another process.
const load = spawn(
  process.execPath,
  [
    join(ROOT, 'dist', 'bench', 'api-load.js'),
    url,
    key.accessKeyId,
    key.secretAccessKey,
    values.rate as string,
    values.seconds as string,
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
let result = '';
load.stdout.on('data', (d: Buffer) => (result += d.toString()));
await new Promise((r) => load.on('exit', r));
server.kill('SIGTERM');
await new Promise((r) => server.on('exit', r));
await rm(dataDir, { recursive: true, force: true });

const r = JSON.parse(result) as {
  requests: number;
  errors: number;
  pages: number;
  achievedRate: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
};
const ms = (n: number) => `${n.toFixed(1)} ms`;
process.stdout.write(
  `GetServers, ${SERVERS} servers (${r.pages} pages of 50), ${r.requests} requests at ${r.achievedRate.toFixed(0)}/s, ${r.errors} errors\n` +
    `p50 ${ms(r.p50)}  p90 ${ms(r.p90)}  p99 ${ms(r.p99)}  max ${ms(r.max)}   target p99 ≤ 50 ms: ${r.p99 <= 50 ? 'met' : 'NOT met'}\n`,
);
