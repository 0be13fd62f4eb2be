/**
 * The checks a launched server must pass before the next launch-order group starts
 * (docs/launch.md, "Validation"): its serial console shows a pattern (a boot check), a
 * TCP port accepts connections, an HTTP endpoint answers with the expected status and
 * body, a script on the launch host exits 0. Every probe retries until its deadline and
 * bounds what it reads; none throws — each returns pass/fail with a reason a person can act on.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { connect, createServer } from 'node:net';

export interface ProbeResult {
  readonly ok: boolean;
  readonly message: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Between attempts of a probe that failed: services come up within seconds of each other. */
const RETRY_MS = 500;
/** One attempt's own bound (a connect or a request), under the probe's deadline. */
const ATTEMPT_MS = 5000;
/** HTTP bodies and script output kept for matching and messages. */
export const MAX_CAPTURE_BYTES = 64 * 1024;

/** Polls the console text until it matches, the instance stops, or time runs out. */
export async function consoleProbe(
  read: () => Promise<string>,
  pattern: RegExp,
  timeoutMs: number,
  stopped: () => boolean = () => false,
): Promise<ProbeResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await read().catch(() => '');
    if (pattern.test(text)) return { ok: true, message: `console matched /${pattern.source}/` };
    if (stopped())
      return { ok: false, message: `the instance stopped before its console matched /${pattern.source}/` };
    if (Date.now() >= deadline) {
      const tail = text.slice(-200).replace(/\s+/g, ' ').trim();
      return {
        ok: false,
        message: `console did not match /${pattern.source}/ within ${Math.round(timeoutMs / 1000)} s${tail ? `; last output: "${tail}"` : ''}`,
      };
    }
    await sleep(Math.min(RETRY_MS, Math.max(1, deadline - Date.now())));
  }
}

/** Retries a TCP connect until one succeeds or time runs out. */
export async function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const err = await new Promise<string | undefined>((resolve) => {
      const s = connect({ host, port });
      const timer = setTimeout(
        () => {
          s.destroy();
          resolve('timed out');
        },
        Math.min(ATTEMPT_MS, Math.max(1, deadline - Date.now())),
      );
      s.once('connect', () => {
        clearTimeout(timer);
        s.destroy();
        resolve(undefined);
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve(e.code ?? e.message);
      });
    });
    if (err === undefined) return { ok: true, message: `TCP ${host}:${port} accepted a connection` };
    last = err;
    await sleep(Math.min(RETRY_MS, Math.max(1, deadline - Date.now())));
    if (Date.now() >= deadline) {
      return {
        ok: false,
        message: `TCP ${host}:${port} refused for ${Math.round(timeoutMs / 1000)} s (${last})`,
      };
    }
  }
}

export interface HttpExpectation {
  readonly path: string;
  /** Default: any 2xx/3xx. */
  readonly status?: number;
  readonly bodyPattern?: RegExp;
}

/** Retries a GET until the status (and body pattern) match or time runs out. */
export async function httpProbe(
  host: string,
  port: number,
  want: HttpExpectation,
  timeoutMs: number,
): Promise<ProbeResult> {
  const deadline = Date.now() + timeoutMs;
  const url = `http://${host}:${port}${want.path}`;
  let last = '';
  for (;;) {
    const got = await get(host, port, want.path, Math.min(ATTEMPT_MS, Math.max(1, deadline - Date.now())));
    if ('status' in got) {
      const statusOk =
        want.status !== undefined ? got.status === want.status : got.status >= 200 && got.status < 400;
      const bodyOk = !want.bodyPattern || want.bodyPattern.test(got.body);
      if (statusOk && bodyOk) return { ok: true, message: `GET ${url} answered ${got.status}` };
      last = !statusOk ? `status ${got.status}` : `body did not match /${want.bodyPattern?.source}/`;
    } else last = got.error;
    await sleep(Math.min(RETRY_MS, Math.max(1, deadline - Date.now())));
    if (Date.now() >= deadline) {
      return { ok: false, message: `GET ${url} failed for ${Math.round(timeoutMs / 1000)} s (${last})` };
    }
  }
}

function get(
  host: string,
  port: number,
  path: string,
  timeoutMs: number,
): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < MAX_CAPTURE_BYTES) chunks.push(c.subarray(0, MAX_CAPTURE_BYTES - size));
        size += c.length;
        if (size > MAX_CAPTURE_BYTES) res.destroy();
      });
      const done = () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      res.on('end', done);
      res.on('close', done);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end();
  });
}

/**
 * Runs `command` with /bin/sh on the launch host (SMS's SSM validation has no agent to run
 * it in the guest: here it runs against the instances, whose ids, consoles and forwarded
 * ports it gets in its environment). Exit 0 passes; killed at the deadline.
 */
export function scriptProbe(
  command: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    const keep = (b: Buffer) => {
      out = (out + b.toString('utf8')).slice(-MAX_CAPTURE_BYTES);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      // The whole process group: a script's own children go too.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    const tail = () => out.trim().split('\n').slice(-3).join(' | ').slice(-300);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, message: `the script could not start: ${e.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut)
        resolve({
          ok: false,
          message: `the script ran over ${Math.round(timeoutMs / 1000)} s and was killed`,
        });
      else if (code === 0) resolve({ ok: true, message: `the script passed${tail() ? `: ${tail()}` : ''}` });
      else
        resolve({
          ok: false,
          message: `the script failed (${signal ?? `exit ${code}`})${tail() ? `: ${tail()}` : ''}`,
        });
    });
  });
}

/** A loopback port free now (the kernel's pick), for a guest port forward. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
