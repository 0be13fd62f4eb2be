/**
 * Image store benchmark against restic, in the same run on the same files (the image store
 * issue's three cases), printing ratios and the targets:
 *
 *   1. first image of the mixed disk (≈50 % random, 30 % zeros, 20 % text-like)
 *   2. the same disk with 1 % of its 64 KiB blocks rewritten
 *   3. the same disk with 1 % of it rewritten as scattered 4 KiB writes
 *
 * plus throughput per core against `openssl speed` (AES-256-GCM and SHA-256, one core) and
 * peak memory. Needs `restic` and `openssl` on the PATH.
 *
 *   npm run build && node dist/bench/store.js [--size 2G] [--dir /tmp/ferry-store-bench] [--keep]
 */
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureMixedDisk } from './mixed-disk.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const FERRY = join(ROOT, 'bin', 'ferry');
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '2G' },
    dir: { type: 'string', default: '/tmp/ferry-store-bench' },
    keep: { type: 'boolean', default: false },
    seed: { type: 'string', default: '7' },
  },
});
const SIZE = parseSize(values.size as string);
const DIR = values.dir as string;
const DISK = join(DIR, 'disk.raw');
const FERRY_REPO = join(DIR, 'ferry-repo');
const RESTIC_REPO = join(DIR, 'restic-repo');
const KEY = join(DIR, 'ferry.key');
const ENV = {
  ...process.env,
  FERRY_STORE_REPO: FERRY_REPO,
  FERRY_STORE_KEY_FILE: KEY,
  RESTIC_REPOSITORY: RESTIC_REPO,
  RESTIC_PASSWORD: 'bench-password',
  RESTIC_CACHE_DIR: join(DIR, 'restic-cache'),
};

function parseSize(s: string): number {
  const m = /^(\d+)([KMGT]?)$/i.exec(s);
  if (!m) throw new Error(`bad size ${s}`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[(m[2] ?? '').toUpperCase()] ?? 1;
  return Number(m[1]) * mult;
}

interface Run {
  seconds: number;
  cpuSeconds: number;
  maxRssMiB: number;
}

function run(cmd: string[]): Run {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S %M', ...cmd], {
    encoding: 'utf8',
    env: ENV,
    maxBuffer: 16 << 20,
  });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed: ${r.stderr}`);
  const [e, u, s, m] = (r.stderr.trim().split('\n').pop() ?? '').split(' ').map(Number);
  return { seconds: e ?? NaN, cpuSeconds: (u ?? 0) + (s ?? 0), maxRssMiB: (m ?? 0) / 1024 };
}

async function du(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? await du(p) : (await stat(p)).size;
  }
  return total;
}

/** Overwrites `count` random, `unit`-aligned pieces of `unit` bytes with random data. */
async function rewrite(unit: number, count: number, seed: number): Promise<void> {
  const fh = await open(DISK, 'r+');
  const buf = Buffer.alloc(unit);
  let x = seed >>> 0;
  try {
    for (let i = 0; i < count; i++) {
      x = (x * 1664525 + 1013904223) >>> 0;
      const slot = Math.floor((x / 2 ** 32) * (SIZE / unit));
      randomFillSync(buf);
      await fh.write(buf, 0, unit, slot * unit);
    }
  } finally {
    await fh.close();
  }
}

function openssl(alg: string): number {
  const r = spawnSync('openssl', ['speed', '-evp', alg, '-bytes', '65536', '-seconds', '2'], {
    encoding: 'utf8',
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  const kbps = Number(line.trim().split(/\s+/).pop()?.replace(/k$/, ''));
  return (kbps * 1000) / 1e6; // MB/s
}

const MB = 1e6;
const fmt = (n: number, d = 2) => n.toFixed(d);
const mib = (n: number) => `${fmt(n / 1024 / 1024, 1)} MiB`;

async function main(): Promise<void> {
  await mkdir(DIR, { recursive: true });
  await rm(FERRY_REPO, { recursive: true, force: true });
  await rm(RESTIC_REPO, { recursive: true, force: true });
  await rm(KEY, { force: true });
  await rm(DISK, { force: true }); // every run starts from the same bytes
  await ensureMixedDisk(DISK, SIZE, Number(values.seed));
  run([FERRY, 'store', 'init', '--new-key-file', KEY]);
  run(['restic', 'init', '--repository-version', '2']);
  console.log(
    `# image store vs restic ${spawnSync('restic', ['version'], { encoding: 'utf8' }).stdout.split(' ')[1]}`,
  );
  console.log(`disk ${mib(SIZE)}, ${availableParallelism()} core(s)\n`);

  const rows: string[] = [];
  const results: { ferry: Run; restic: Run; ferryAdded: number; resticAdded: number }[] = [];
  const cases = [
    ['first image', async () => {}],
    ['1 % of 64 KiB blocks rewritten', () => rewrite(65536, Math.round((SIZE / 65536) * 0.01), 11)],
    ['1 % rewritten as scattered 4 KiB writes', () => rewrite(4096, Math.round((SIZE / 4096) * 0.01), 13)],
  ] as const;
  for (const [i, [name, change]] of cases.entries()) {
    await change();
    const fBefore = await du(FERRY_REPO);
    const rBefore = await du(RESTIC_REPO);
    const ferry = run([
      FERRY,
      'images',
      'write',
      DISK,
      '--name',
      `bench-${i}`,
      '--job',
      'bench',
      '--no-progress',
    ]);
    const restic = run(['restic', 'backup', '--host', 'bench', '--quiet', DISK]);
    const ferryAdded = (await du(FERRY_REPO)) - fBefore;
    const resticAdded = (await du(RESTIC_REPO)) - rBefore;
    results.push({ ferry, restic, ferryAdded, resticAdded });
    rows.push(
      `| ${name} | ${fmt(ferry.seconds)} s | ${fmt(restic.seconds)} s | **${fmt(restic.seconds / ferry.seconds)}×** | ` +
        `${mib(ferryAdded)} | ${mib(resticAdded)} | **${fmt(ferryAdded / resticAdded, 3)}** | ` +
        `${fmt(ferry.maxRssMiB, 0)} / ${fmt(restic.maxRssMiB, 0)} MiB |`,
    );
  }
  console.log(
    '| case | ferry | restic | speed-up (restic/ferry) | ferry adds | restic adds | bytes ratio | peak RSS ferry / restic |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(r);

  const [c1, c2, c3] = results as [(typeof results)[0], (typeof results)[0], (typeof results)[0]];
  const aes = openssl('aes-256-gcm');
  const sha = openssl('sha256');
  const perCore = SIZE / MB / c1.ferry.cpuSeconds;
  console.log(
    `\nfirst image: ${fmt(SIZE / MB / c1.ferry.seconds, 0)} MB/s wall, ${fmt(perCore, 0)} MB/s per CPU-second ` +
      `(${fmt(c1.ferry.cpuSeconds, 1)} CPU s); one core: openssl AES-256-GCM ${fmt(aes, 0)} MB/s, ` +
      `SHA-256 ${fmt(sha, 0)} MB/s → ferry per core = ${fmt(perCore / aes, 2)}× AES-GCM, ${fmt(perCore / sha, 2)}× SHA-256`,
  );
  console.log(
    `repository after 3 images: ferry ${mib(await du(FERRY_REPO))}, restic ${mib(await du(RESTIC_REPO))}`,
  );
  const targets: [string, boolean][] = [
    ['first image ≥ 2× faster than restic backup', c1.restic.seconds / c1.ferry.seconds >= 2],
    ['first image repository no larger than restic', c1.ferryAdded <= c1.resticAdded],
    ['second image ≥ 3× faster than restic', c2.restic.seconds / c2.ferry.seconds >= 3],
    ['second image adds ≤ 1/10 of restic', c2.ferryAdded <= c2.resticAdded / 10],
    ['third image adds ≤ 1/3 of restic', c3.ferryAdded <= c3.resticAdded / 3],
  ];
  console.log('\ntargets:');
  for (const [t, ok] of targets) console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${t}`);
  if (!values.keep) await rm(DIR, { recursive: true, force: true });
}

await main();
