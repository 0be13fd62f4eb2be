/**
 * Starts real `ferry server` processes for API tests: a temporary data directory, a
 * random loopback port, the admin credentials the first start writes, and a stop()
 * that ends exactly the process it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dialect } from '../../src/db/index.js';
import { freshPostgresTarget } from './databases.js';
import assert from 'node:assert/strict';
import { FERRY_BIN, ferry, sha256File, tempDir } from './qemu.js';

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly credentials: Credentials;
  readonly child: ChildProcess;
  /** Everything the server wrote to stderr so far (its log). */
  log(): string;
  /** Everything it wrote to stdout so far (its announcements). */
  stdout(): string;
  /** SIGTERM (or another signal), then waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  readonly dialect?: Dialect;
  readonly imagesDir?: string;
  readonly dataDir?: string;
  /** PostgreSQL target to reuse (a restart on the same database). */
  readonly database?: string;
  readonly args?: readonly string[];
  readonly timeoutMs?: number;
  /** Serve HTTPS with Ferry's own CA (no --insecure-http). */
  readonly tls?: boolean;
}

export async function startServer(o: StartOptions = {}): Promise<RunningServer> {
  const dataDir = o.dataDir ?? join(await tempDir('ferry-server-'), 'data');
  let database = o.database;
  let drop: (() => Promise<void>) | undefined;
  if (o.dialect === 'postgres' && !database) {
    const pg = await freshPostgresTarget();
    database = pg.target;
    drop = pg.drop;
  }
  const args = [
    FERRY_BIN,
    'server',
    '--data-dir',
    dataDir,
    '--listen',
    '127.0.0.1:0',
    ...(o.tls ? [] : ['--insecure-http']),
    '--log-level',
    'warn',
    ...(o.imagesDir ? ['--images-dir', o.imagesDir] : []),
    ...(database ? ['--database', database] : []),
    ...(o.args ?? []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ferry server did not start in time; stderr: ${stderr}`));
    }, o.timeoutMs ?? 30_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      const m = /listening on https?:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ferry server exited with ${code} before listening; stderr: ${stderr}`));
    });
  });
  const credentials = JSON.parse(
    await readFile(join(dataDir, 'admin-credentials.json'), 'utf8'),
  ) as Credentials;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    url: `${o.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    dataDir,
    credentials,
    child,
    log: () => stderr,
    stdout: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await exited;
      if (drop && signal !== 'SIGKILL') await drop().catch(() => undefined);
      return code;
    },
  };
}

/**
 * SHA-256 of disk `disk` of image `amiId`, exported as raw to `out` by the CLI from a server's
 * data directory (`ferry images export … --data-dir`).
 */
export async function exportedDiskSha(
  dataDir: string,
  amiId: string,
  out: string,
  disk = 0,
): Promise<string> {
  const r = await ferry([
    'images',
    'export',
    amiId,
    '--data-dir',
    dataDir,
    '--disk',
    String(disk),
    '-O',
    'raw',
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return sha256File(out);
}
