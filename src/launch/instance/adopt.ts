/**
 * Adopting a standalone instance after a restart of the launch host process: a
 * materialised instance (materialize.ts) needs nothing from the process that launched it,
 * so `ferry server` leaves it running when it stops, and the next one takes it back from
 * its directory — the pid file (checked against /proc so a recycled pid is never signalled),
 * the QMP socket, the console log, and qemu.json (how to boot it again).
 */
import { readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { InstanceStateError } from '../../errors/index.js';
import { ConsoleLog, DEFAULT_CONSOLE_READ_BYTES } from './console-log.js';
import type { InstanceExit } from './instance.js';
import { MATERIALIZED_MARKER } from './materialize.js';
import { startQemu } from './qemu-process.js';
import { QmpConnection } from './qmp.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
/** How often an adopted QEMU (not our child: no exit event) is checked for life. */
const LIVENESS_POLL_MS = 500;
const TERM_GRACE_MS = 5000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The QEMU whose pid the directory records, if it still runs and is this instance's. */
async function ownQemu(dir: string): Promise<number | undefined> {
  const pid = Number((await readFile(join(dir, 'qemu.pid'), 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes(join(dir, 'qmp.sock')) ? pid : undefined;
}

/** An adopted instance, or undefined when the directory holds no live standalone one. */
export async function adoptInstance(id: string, dir: string): Promise<AdoptedInstance | undefined> {
  if (!(await readFile(join(dir, MATERIALIZED_MARKER)).catch(() => undefined))) return undefined;
  const pid = await ownQemu(dir);
  if (pid === undefined) return undefined;
  try {
    const q = await QmpConnection.connect(join(dir, 'qmp.sock'), 5000);
    q.close();
  } catch {
    return undefined;
  }
  return new AdoptedInstance(id, dir, pid);
}

export class AdoptedInstance {
  readonly id: string;
  readonly dir: string;
  readonly materialized = true;
  #pid: number;
  #exited!: Promise<InstanceExit>;
  #exit: InstanceExit | undefined;
  #terminated = false;
  readonly #console: ConsoleLog;

  constructor(id: string, dir: string, pid: number) {
    this.id = id;
    this.dir = dir;
    this.#pid = pid;
    this.#console = new ConsoleLog(join(dir, 'console.log'));
    this.#console.start();
    this.#watch();
  }

  #watch(): void {
    const pid = this.#pid;
    this.#exit = undefined;
    this.#exited = (async () => {
      while (alive(pid)) await sleep(LIVENESS_POLL_MS);
      // Not our child: how it ended is not known.
      this.#exit = { code: null, signal: null };
      this.#console.stop();
      return this.#exit;
    })();
  }

  get pid(): number {
    return this.#pid;
  }
  get exited(): Promise<InstanceExit> {
    return this.#exited;
  }
  get state(): 'running' | 'stopped' | 'terminated' {
    return this.#terminated ? 'terminated' : this.#exit ? 'stopped' : 'running';
  }

  /** Adopted instances are materialised already. */
  async materialize(_o?: unknown): Promise<void> {}

  consoleText(o: { maxBytes?: number } = {}): Promise<string> {
    return this.#console.read(o.maxBytes ?? DEFAULT_CONSOLE_READ_BYTES);
  }

  async qmp(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<unknown> {
    const q = await QmpConnection.connect(join(this.dir, 'qmp.sock'), timeoutMs);
    try {
      return await q.execute(command, args, timeoutMs);
    } finally {
      q.close();
    }
  }

  /** ACPI power button, then SIGTERM, then SIGKILL — as Instance.stop. */
  async stop(o: { timeoutMs?: number } = {}): Promise<InstanceExit> {
    if (this.#exit) return this.#exit;
    const timeoutMs = o.timeoutMs ?? 60_000;
    if (timeoutMs > 0) {
      await this.qmp('system_powerdown', undefined, Math.min(timeoutMs, 10_000)).catch(() => undefined);
      const done = await Promise.race([this.#exited, sleep(timeoutMs).then(() => undefined)]);
      if (done) return done;
    }
    const signal = (s: NodeJS.Signals) => {
      try {
        process.kill(this.#pid, s);
      } catch {
        // gone already
      }
    };
    signal('SIGTERM');
    const termed = await Promise.race([this.#exited, sleep(TERM_GRACE_MS).then(() => undefined)]);
    if (termed) return termed;
    signal('SIGKILL');
    return this.#exited;
  }

  /** Boots it again from its directory (qemu.json): the overlays hold all its data. */
  async start(): Promise<void> {
    if (this.#terminated)
      throw new InstanceStateError(`instance ${this.id} is terminated`, { instanceId: this.id });
    if (!this.#exit) return;
    const spec = JSON.parse(await readFile(join(this.dir, 'qemu.json'), 'utf8')) as {
      qemu: string;
      args: string[];
      startTimeoutMs: number;
    };
    const q = await startQemu(
      spec.qemu,
      spec.args,
      join(this.dir, 'qmp.sock'),
      spec.startTimeoutMs,
      undefined,
      join(this.dir, 'qemu.log'),
    );
    this.#pid = q.child.pid;
    q.child.unref();
    this.#console.start();
    this.#watch();
  }

  /** Leaves it running; this process forgets it. */
  detach(): void {
    this.#console.stop();
  }

  /** Stops it and removes its directory's files (overlays included) and the directory. */
  async terminate(o: { timeoutMs?: number } = {}): Promise<void> {
    if (this.#terminated) return;
    await this.stop({ timeoutMs: o.timeoutMs ?? 60_000 });
    this.#console.stop();
    for (const name of await readdir(this.dir).catch(() => [])) {
      await rm(join(this.dir, name), { force: true, recursive: true });
    }
    await rmdir(this.dir).catch(() => undefined);
    this.#terminated = true;
  }
}
