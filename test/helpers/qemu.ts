/**
 * Test helpers around the oracle (qemu-img / qemu-io) and the CLI. qemu-img is never a
 * runtime dependency of Ferry's readers; tests use it to make images and to check results.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = new URL('../../../', import.meta.url).pathname; // dist/test/helpers → repo root

export const FERRY_BIN = join(ROOT, 'bin', 'ferry');
export const SHARED_DIR = join(ROOT, '..', 'shared');

export async function qemuImg(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('qemu-img', args, { maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`qemu-img ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

/** Runs qemu-io commands (e.g. "write -P 0xab 0 64k") against an image. */
export async function qemuIo(file: string, format: string, ...commands: string[]): Promise<string> {
  const args = ['-f', format];
  for (const c of commands) args.push('-c', c);
  args.push(file);
  try {
    const { stdout } = await run('qemu-io', args, { maxBuffer: 64 << 20 });
    if (/error|failed/i.test(stdout)) throw new Error(stdout);
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`qemu-io ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

/** SHA-256 of a file's bytes, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The oracle's checksum of an image: qemu-img converts it to raw, then we hash that. */
export async function oracleChecksum(image: string, format?: string, dir?: string): Promise<string> {
  const out = join(dir ?? (await tempDir()), `oracle-${Math.random().toString(16).slice(2)}.raw`);
  await qemuImg('convert', ...(format ? ['-f', format] : []), '-O', 'raw', image, out);
  try {
    return await sha256File(out);
  } finally {
    await rm(out, { force: true });
  }
}

const dirs: string[] = [];
export async function tempDir(prefix = 'ferry-test-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
process.on('exit', () => {
  // Synchronous cleanup of the temp dirs this test file made ('exit' handlers cannot await).
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
export async function cleanupTempDirs(): Promise<void> {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs ./bin/ferry with a timeout (a hang is a failure, not a stuck test run). */
export function ferry(
  args: string[],
  options: { timeoutMs?: number; stdoutLimit?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FERRY_BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Variables to add or override (an empty string unsets one for Ferry's purposes).
      ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    const limit = options.stdoutLimit ?? 64 << 20;
    child.stdout.on('data', (d: Buffer) => {
      outBytes += d.length;
      if (outBytes <= limit) out.push(d);
    });
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ferry ${args.join(' ')} timed out`));
    }, options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: performance.now() - started,
      });
    });
  });
}

/** Deterministic pseudo-random bytes (xorshift), so fixtures are reproducible. */
export function pseudoRandom(length: number, seed = 1): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeUInt32LE(x >>> 0, i);
  }
  for (let i = length - (length % 4); i < length; i++) buf[i] = i & 0xff;
  return buf;
}

/** Asserts a CLI failure is a clean coded error: non-zero exit, one coded line, no stack. */
export function assertCleanFailure(r: CliResult, code?: string): void {
  if (r.code === 0) throw new Error(`expected failure, got exit 0; stdout=${r.stdout.slice(0, 200)}`);
  if (!/^ferry: FERRY_[A-Z_]+: /m.test(r.stderr)) throw new Error(`no coded error on stderr: ${r.stderr}`);
  if (/\n\s+at .+\(.*:\d+:\d+\)/.test(r.stderr) || /node:internal/.test(r.stderr)) {
    throw new Error(`stack trace leaked: ${r.stderr}`);
  }
  if (code && !r.stderr.includes(code)) throw new Error(`expected ${code}, got: ${r.stderr}`);
}
