/**
 * Starts QEMU for an instance and waits until it answers on QMP (its greeting comes from
 * the main loop, i.e. after every drive was opened and the machine was built). Used for
 * the first boot (launch.ts) and for each start of a stopped instance (instance.ts). A
 * QEMU that exits or stays silent is killed and reported with its stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { open } from 'node:fs/promises';
import { LaunchFailedError } from '../../errors/index.js';
import type { InstanceExit } from './instance.js';
import { QmpConnection } from './qmp.js';

/** QEMU's stderr kept for error messages: its errors are one or two lines. */
const MAX_STDERR_BYTES = 16 * 1024;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface QemuProcess {
  readonly child: ChildProcess & { pid: number };
  /** Resolves when QEMU exits, for whatever reason. */
  readonly exited: Promise<InstanceExit>;
}

export async function startQemu(
  qemu: string,
  args: readonly string[],
  qmpSocket: string,
  startTimeoutMs: number,
  onSpawn?: (child: ChildProcess) => void,
  logFile?: string,
): Promise<QemuProcess> {
  // QEMU's stderr goes to a file, not a pipe, and QEMU gets its own process group: a
  // standalone (materialised) instance outlives this process without dying of SIGPIPE or
  // of a Ctrl-C meant for the server.
  const log = logFile ? await open(logFile, 'a', 0o600) : undefined;
  let proc: ChildProcess;
  try {
    proc = spawn(qemu, args, { stdio: ['ignore', 'ignore', log ? log.fd : 'pipe'], detached: true });
  } finally {
    await log?.close();
  }
  onSpawn?.(proc);
  let piped = '';
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (s: string) => {
    piped = (piped + s).slice(-MAX_STDERR_BYTES);
  });
  const exited = new Promise<InstanceExit>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
    proc.once('error', () => resolve({ code: null, signal: null }));
  });
  try {
    await waitReady(qmpSocket, exited, startTimeoutMs, async () =>
      logFile ? await tailText(logFile, MAX_STDERR_BYTES) : piped,
    );
  } catch (err) {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
    throw err;
  }
  return { child: proc as ChildProcess & { pid: number }, exited };
}

async function tailText(path: string, n: number): Promise<string> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return '';
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, n);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}

/** Polls QMP until QEMU greets and answers query-status; fails if QEMU exits first or time runs out. */
async function waitReady(
  qmpSocket: string,
  exited: Promise<InstanceExit>,
  timeoutMs: number,
  readStderr: () => Promise<string>,
): Promise<void> {
  let exit: InstanceExit | undefined;
  void exited.then((e) => (exit = e));
  const deadline = Date.now() + timeoutMs;
  const failed = async (why: string) => {
    const stderr = await readStderr();
    return new LaunchFailedError(
      `QEMU ${why}: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'no message'}`,
      {
        stderr: stderr.slice(-2000),
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
      },
    );
  };
  for (;;) {
    if (exit) throw await failed('exited while starting');
    try {
      const q = await QmpConnection.connect(qmpSocket, Math.max(1, Math.min(5000, deadline - Date.now())));
      try {
        await q.execute('query-status');
      } finally {
        q.close();
      }
      return;
    } catch {
      if (exit) throw await failed('exited while starting');
      if (Date.now() >= deadline) throw await failed(`did not answer on QMP within ${timeoutMs} ms`);
      await Promise.race([sleep(50), exited]);
    }
  }
}
