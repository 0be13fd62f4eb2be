/**
 * One short QMP session per operation. QEMU's monitor serves ONE client at a time: while
 * a client is connected, the next one waits (its connection sits in the listen backlog
 * and gets no greeting). Users' scripts, libvirt-less tooling and tests talk to the same
 * socket, so the connector never holds it: it connects, does one operation and
 * disconnects in `finally`. Within this process, operations on one socket queue behind
 * each other instead of timing each other out.
 */
import { FerryError } from '../../errors/index.js';
import { QmpClient } from './qmp/index.js';

/**
 * Connect attempts per session. A waiting attempt gets the monitor as soon as the other
 * client leaves; three attempts of `connectTimeoutMs` cover another tool's short session
 * without letting a monitor that is held for good block a run.
 */
export const QMP_CONNECT_ATTEMPTS = 3;
/** Default wait for QEMU's greeting per attempt. */
export const DEFAULT_QMP_SESSION_TIMEOUT_MS = 5_000;

export interface SessionOptions {
  readonly connectTimeoutMs: number;
  readonly signal?: AbortSignal;
}

const queues = new Map<string, Promise<unknown>>();

/** Runs `fn` with a fresh QMP connection to `path`, closed afterwards whatever happens. */
export async function withQmp<T>(
  path: string,
  options: SessionOptions,
  fn: (q: QmpClient) => Promise<T>,
): Promise<T> {
  const prev = queues.get(path) ?? Promise.resolve();
  const run = prev.catch(() => {}).then(() => session(path, options, fn));
  queues.set(path, run);
  try {
    return await run;
  } finally {
    if (queues.get(path) === run) queues.delete(path);
  }
}

async function session<T>(path: string, options: SessionOptions, fn: (q: QmpClient) => Promise<T>) {
  let q: QmpClient | undefined;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      q = await QmpClient.connect(
        { path },
        { connectTimeoutMs: options.connectTimeoutMs, ...(options.signal ? { signal: options.signal } : {}) },
      );
      break;
    } catch (err) {
      // Refused / missing socket: QEMU is not there, retrying will not help.
      if (attempt >= QMP_CONNECT_ATTEMPTS || isGone(err)) throw err;
      await sleep(100 * attempt);
    }
  }
  try {
    return await fn(q);
  } finally {
    await q.close().catch(() => {});
  }
}

/** True when the error says no QEMU listens on the socket (refused, missing, not a socket). */
export function isGone(err: unknown): boolean {
  if (!FerryError.is(err) || err.code !== 'FERRY_QMP_DISCONNECTED') return false;
  const errno = err.details.errno;
  return errno === 'ECONNREFUSED' || errno === 'ENOENT' || errno === 'ENOTSOCK';
}

/** True when QEMU refused a command (as opposed to the connection failing). */
export function isRefused(err: unknown): err is FerryError {
  return FerryError.is(err) && err.code === 'FERRY_QMP_COMMAND_FAILED';
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `check` every `everyMs` until it returns true or `timeoutMs` passes; returns
 * whether it did. Used for QEMU state that changes asynchronously after a command (an
 * export going away, a cancelled job concluding).
 */
export async function pollUntil(
  check: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}
