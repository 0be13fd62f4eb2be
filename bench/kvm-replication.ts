/**
 * KVM replication benchmark (issue: agentless replication of running VMs), one run, one VM:
 *
 *   reference   `qemu-img convert` reading the VM's disk over NBD (QEMU's own NBD server,
 *               the same path Ferry reads) into a raw file;
 *   first run   Ferry's first replication run of that VM (full read; hashing, dedup,
 *               zstd and AES-GCM into the image store), timed through the SMS API;
 *   incremental 1 % of the disk rewritten inside the running VM (scattered 64 KiB writes
 *               through QEMU's block layer), then an on-demand run.
 *
 * Prints bytes read and the ratios the issue sets: incremental reads ≤ 2 % of the disk and
 * takes ≤ 5 % of the first run's time; the first run within 1.3× of the reference.
 *
 *   npm run build && node dist/bench/kvm-replication.js [--size 2G] [--dir /tmp/ferry-bench-kvm]
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { SMS } from '@aws-sdk/client-sms';
import { QmpClient, humanMonitorCommand } from '../src/connectors/kvm/index.js';
import { ensureMixedDisk } from './mixed-disk.js';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '2G' },
    dir: { type: 'string', default: '/tmp/ferry-bench-kvm' },
    changed: { type: 'string', default: '0.01' },
  },
});
const SIZE = Number(/^(\d+)G$/i.exec(values.size as string)?.[1] ?? '2') * 1024 ** 3;
const DIR = values.dir as string;
const GRANULE = 64 * 1024;

async function withQmp<T>(sock: string, fn: (q: QmpClient) => Promise<T>): Promise<T> {
  const q = await QmpClient.connect({ path: sock }, { connectTimeoutMs: 30_000 });
  try {
    return await fn(q);
  } finally {
    await q.close();
  }
}

async function main(): Promise<void> {
  await rm(DIR, { recursive: true, force: true });
  const qmpDir = join(DIR, 'qmp');
  await mkdir(qmpDir, { recursive: true });
  const raw = join(DIR, 'mixed.raw');
  await ensureMixedDisk(raw, SIZE);
  const disk = join(DIR, 'vm.qcow2');
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, disk]);
  await rm(raw);
  const sock = join(qmpDir, 'bench.qmp');
  const vm = spawn(
    'qemu-system-x86_64',
    [
      ...['-name', 'bench', '-no-shutdown', '-nodefaults', '-display', 'none', '-m', '64', '-S'],
      ...['-machine', 'accel=kvm:tcg', '-qmp', `unix:${sock},server=on,wait=off`],
      ...['-drive', `file=${disk},format=qcow2,if=none,id=drive0,node-name=disk0`],
      ...['-device', 'virtio-blk-pci,drive=drive0'],
    ],
    { stdio: 'ignore' },
  );
  try {
    for (let i = 0; i < 100; i++) {
      if (
        await stat(sock).then(
          () => true,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 100));
    }

    // Reference: qemu-img convert over NBD from QEMU's own export of the disk.
    const nbdSock = join(DIR, 'ref.nbd');
    await withQmp(sock, async (q) => {
      // QEMU's nbd-server-start takes the legacy socket address form ({ type, data }).
      await q.execute('nbd-server-start', { addr: { type: 'unix', data: { path: nbdSock } } });
      await q.execute('block-export-add', { type: 'nbd', id: 'ref', 'node-name': 'disk0', name: 'ref' });
    });
    const out = join(DIR, 'ref.raw');
    let t = performance.now();
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', `nbd+unix:///ref?socket=${nbdSock}`, out]);
    const reference = (performance.now() - t) / 1000;
    await rm(out);
    await withQmp(sock, async (q) => {
      await q.execute('block-export-del', { id: 'ref' });
      await q.execute('nbd-server-stop');
    });

    // Ferry: server with the VM's directory, one job, first run.
    const dataDir = join(DIR, 'data');
    const server = spawn(
      process.execPath,
      [
        ...[join(ROOT, 'bin', 'ferry'), 'server', '--data-dir', dataDir, '--listen', '127.0.0.1:0'],
        ...['--insecure-http', '--log-level', 'warn', '--qmp-dir', qmpDir, '--frequency-unit', 'minutes'],
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let buf = '';
        server.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          const m = /listening on (http:\/\/\S+)/.exec(buf);
          if (m) resolve(m[1] as string);
        });
        server.on('exit', (code) => reject(new Error(`server exited ${code}`)));
      });
      const credentials = JSON.parse(await readFile(join(dataDir, 'admin-credentials.json'), 'utf8')) as {
        accessKeyId: string;
        secretAccessKey: string;
      };
      const sms = new SMS({ endpoint: url, region: 'us-east-1', credentials, maxAttempts: 1 });
      await sms.importServerCatalog({});
      const serverId = (await sms.getServers({})).serverList?.[0]?.serverId;
      if (!serverId) throw new Error('the VM was not catalogued');
      const finished = async (jobId: string, runId?: string) => {
        for (;;) {
          const runs = (await sms.getReplicationRuns({ replicationJobId: jobId })).replicationRunList ?? [];
          const r = runId ? runs.find((x) => x.replicationRunId === runId) : runs[0];
          if (r && !['PENDING', 'ACTIVE'].includes(r.state ?? '')) {
            if (r.state !== 'COMPLETED') throw new Error(`run ${r.state}: ${r.statusMessage}`);
            return r;
          }
          await new Promise((res) => setTimeout(res, 100));
        }
      };
      t = performance.now();
      const { replicationJobId } = await sms.createReplicationJob({
        serverId,
        seedReplicationTime: new Date(),
        frequency: 600,
      });
      const first = await finished(replicationJobId!);
      const firstSeconds = (performance.now() - t) / 1000;
      const firstRead = Number(/(\d+) bytes read from the source/.exec(first.statusMessage ?? '')?.[1]);

      // 1 % of the disk changes: scattered 64 KiB writes inside the running VM.
      const writes = Math.round((SIZE * Number(values.changed)) / GRANULE);
      const pattern = join(DIR, 'pattern.bin');
      await writeFile(pattern, Buffer.alloc(GRANULE, 0x5a));
      const slots = SIZE / GRANULE;
      await withQmp(sock, async (q) => {
        for (let i = 0; i < writes; i++) {
          const at = Math.floor((((i * 2654435761) % 2 ** 32) / 2 ** 32) * slots) * GRANULE;
          await humanMonitorCommand(q, `qemu-io drive0 "write -s ${pattern} ${at} ${GRANULE}"`);
        }
      });
      t = performance.now();
      const { replicationRunId } = await sms.startOnDemandReplicationRun({ replicationJobId });
      const second = await finished(replicationJobId!, replicationRunId);
      const incSeconds = (performance.now() - t) / 1000;
      const incRead = Number(/(\d+) bytes read from the source/.exec(second.statusMessage ?? '')?.[1]);
      sms.destroy();

      const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
      console.log(`\nmachine: ${cpus().length} x ${cpus()[0]?.model} | node ${process.version}`);
      console.log(
        `disk: ${SIZE} bytes mixed (qcow2), ${writes} × 64 KiB rewritten (${values.changed as string})\n`,
      );
      console.log('| measure | value | target | met |');
      console.log('| --- | ---: | --- | --- |');
      const row = (m: string, v: string, target: string, ok: boolean) =>
        console.log(`| ${m} | ${v} | ${target} | ${ok ? 'yes' : 'NO'} |`);
      row('reference: qemu-img convert over NBD → raw', `${reference.toFixed(2)} s`, '', true);
      row(
        'first run (full read, into the store)',
        `${firstSeconds.toFixed(2)} s, ${firstRead} B read`,
        '',
        true,
      );
      row(
        'first run / reference',
        `${(firstSeconds / reference).toFixed(2)}×`,
        '≤ 1.3×',
        firstSeconds / reference <= 1.3,
      );
      row('incremental run', `${incSeconds.toFixed(2)} s, ${incRead} B read`, '', true);
      row('incremental bytes read / disk', pct(incRead / SIZE), '≤ 2 %', incRead / SIZE <= 0.02);
      row(
        'incremental time / first run',
        pct(incSeconds / firstSeconds),
        '≤ 5 %',
        incSeconds / firstSeconds <= 0.05,
      );
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.on('exit', r));
    }
  } finally {
    vm.kill('SIGKILL');
  }
}

await main();
