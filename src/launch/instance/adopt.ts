/**
 * Adopting an instance after a restart of the launch host process. `ferry server` leaves
 * running instances running when it stops, and the next process takes them back from
 * their directory — the pid file (checked against /proc so a recycled pid is never
 * signalled), the QMP socket, the console log, and qemu.json (how to boot it again):
 *
 * - a standalone (materialised, materialize.ts) instance needs nothing else: adoptInstance;
 * - a test instance still reads its image through DIR/nbd.sock: adoptTestInstance serves
 *   the image there again, and QEMU, whose NBD client waits for the server to come back
 *   (reconnect-delay, overlay.ts), reconnects at the guest's next read.
 */
import { readdir, readFile, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Disk } from '../../disk/index.js';
import { InstanceStateError, LaunchFailedError } from '../../errors/index.js';
import { NbdServer } from '../nbd-server/server.js';
import { ConsoleLog, DEFAULT_CONSOLE_READ_BYTES } from './console-log.js';
import type { InstanceExit } from './instance.js';
import { MATERIALIZED_MARKER, streamBackings, type StreamProgress } from './materialize.js';
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
export async function instanceQemu(dir: string): Promise<number | undefined> {
  const pid = Number((await readFile(join(dir, 'qemu.pid'), 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes(join(dir, 'qmp.sock')) ? pid : undefined;
}

/** Whether the instance's overlays hold all its data (materialize.ts left its marker). */
export async function isMaterialized(dir: string): Promise<boolean> {
  return (await readFile(join(dir, MATERIALIZED_MARKER)).catch(() => undefined)) !== undefined;
}

async function answersQmp(dir: string): Promise<boolean> {
  try {
    const q = await QmpConnection.connect(join(dir, 'qmp.sock'), 5000);
    q.close();
    return true;
  } catch {
    return false;
  }
}

/** An adopted instance, or undefined when the directory holds no live standalone one. */
export async function adoptInstance(id: string, dir: string): Promise<AdoptedInstance | undefined> {
  if (!(await isMaterialized(dir))) return undefined;
  const pid = await instanceQemu(dir);
  if (pid === undefined || !(await answersQmp(dir))) return undefined;
  return new AdoptedInstance(id, dir, pid);
}

/**
 * Adopts a running test instance: its image `disks` (ownership passes to the instance;
 * closed on failure) are served again on DIR/nbd.sock, exports disk0, disk1, … as at
 * launch. Rejects with FERRY_LAUNCH_FAILED when its QEMU no longer runs or answers.
 */
export async function adoptTestInstance(
  id: string,
  dir: string,
  disks: readonly Disk[],
): Promise<AdoptedInstance> {
  return withDisks(disks, async () => {
    const pid = await instanceQemu(dir);
    if (pid === undefined) throw new LaunchFailedError(`the QEMU of instance ${id} no longer runs`, { dir });
    if (!(await answersQmp(dir)))
      throw new LaunchFailedError(`the QEMU of instance ${id} does not answer on QMP`, { dir, pid });
    return new AdoptedInstance(id, dir, pid, await serveAgain(id, dir, disks));
  });
}

/**
 * Adopts an instance that was stopped when the previous process stopped (or crashed):
 * nothing runs, and start() boots it again from DIR/qemu.json on its overlays. A test
 * instance's image `disks` are served again (ownership passes; closed on failure); a
 * standalone one has none. Rejects with FERRY_LAUNCH_FAILED when it cannot boot again.
 */
export async function adoptStoppedInstance(
  id: string,
  dir: string,
  disks: readonly Disk[] = [],
): Promise<AdoptedInstance> {
  return withDisks(disks, async () => {
    if (!(await stat(join(dir, 'qemu.json')).catch(() => undefined)))
      throw new LaunchFailedError(`instance ${id} cannot boot again: no qemu.json in ${dir}`, { dir });
    // Recorded stopped, yet running: a second QEMU on the same overlays must never start.
    const pid = await instanceQemu(dir);
    if (pid !== undefined)
      throw new LaunchFailedError(`instance ${id} is recorded stopped but its QEMU runs`, { dir, pid });
    const served = disks.length > 0 ? await serveAgain(id, dir, disks) : undefined;
    return new AdoptedInstance(id, dir, undefined, served);
  });
}

/** Runs `adopt`; if it fails, `disks` (whose ownership it was given) are closed. */
async function withDisks<T>(disks: readonly Disk[], adopt: () => Promise<T>): Promise<T> {
  try {
    return await adopt();
  } catch (err) {
    await Promise.allSettled(disks.map((d) => d.close()));
    throw err;
  }
}

/** The image served again where the overlays look for it: DIR/nbd.sock, exports disk0, disk1, … */
async function serveAgain(id: string, dir: string, disks: readonly Disk[]): Promise<ServedImage> {
  const path = join(dir, 'nbd.sock');
  // The previous process's socket, if it crashed: nothing listens on it any more.
  await rm(path, { force: true });
  const nbd = await NbdServer.listen({
    path,
    exports: disks.map((disk, i) => ({ name: `disk${i}`, disk, description: `${id} disk ${i}` })),
  });
  return { nbd, disks };
}

/** The image export a test instance reads (this process's NBD server and the open disks). */
interface ServedImage {
  readonly nbd: NbdServer;
  readonly disks: readonly Disk[];
}

export class AdoptedInstance {
  readonly id: string;
  readonly dir: string;
  /** Overlay paths, boot disk first (a test instance's; what materialize() streams into). */
  readonly overlays: readonly string[];
  #pid: number | undefined;
  #served: ServedImage | undefined;
  #standalone: boolean;
  #exited!: Promise<InstanceExit>;
  #exit: InstanceExit | undefined;
  #terminated = false;
  readonly #console: ConsoleLog;

  /** `pid` undefined: adopted stopped (start() boots it). */
  constructor(id: string, dir: string, pid: number | undefined, served?: ServedImage) {
    this.id = id;
    this.dir = dir;
    this.#pid = pid;
    this.#served = served;
    this.#standalone = served === undefined;
    this.overlays = (served?.disks ?? []).map((_, i) => join(dir, `overlay-${i}.qcow2`));
    this.#console = new ConsoleLog(join(dir, 'console.log'));
    if (pid === undefined) {
      this.#exit = { code: null, signal: null };
      this.#exited = Promise.resolve(this.#exit);
      return;
    }
    this.#console.start();
    this.#watch(pid);
  }

  #watch(pid: number): void {
    this.#exit = undefined;
    this.#exited = (async () => {
      while (alive(pid)) await sleep(LIVENESS_POLL_MS);
      // Not our child: how it ended is not known.
      this.#exit = { code: null, signal: null };
      this.#console.stop();
      return this.#exit;
    })();
  }

  /** QEMU's pid (of the current boot; undefined if adopted stopped and not started since). */
  get pid(): number | undefined {
    return this.#pid;
  }
  get exited(): Promise<InstanceExit> {
    return this.#exited;
  }
  get state(): 'running' | 'stopped' | 'terminated' {
    return this.#terminated ? 'terminated' : this.#exit ? 'stopped' : 'running';
  }

  /** Standalone: no image served to it (a test instance reads its image through this process). */
  get materialized(): boolean {
    return this.#standalone;
  }

  /**
   * As Instance.materialize, for a test instance: the image streamed in (a stopped one is
   * started for it and stopped again), then released.
   */
  async materialize(
    o: { onProgress?: (p: StreamProgress) => void; signal?: AbortSignal } = {},
  ): Promise<void> {
    if (this.#standalone) return;
    if (this.#terminated)
      throw new InstanceStateError(`instance ${this.id} is terminated`, { instanceId: this.id });
    const wasStopped = this.#exit !== undefined;
    if (wasStopped) await this.start();
    await streamBackings(this, o);
    this.#standalone = true;
    if (wasStopped) await this.stop({ timeoutMs: 0 });
    await this.#release();
  }

  /** Stops serving the image (the NBD server closed, the disks released). */
  async #release(): Promise<void> {
    const served = this.#served;
    this.#served = undefined;
    if (served) await Promise.allSettled([served.nbd.close(), ...served.disks.map((d) => d.close())]);
  }

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
    const pid = this.#pid;
    if (this.#exit || pid === undefined) return this.#exited;
    const timeoutMs = o.timeoutMs ?? 60_000;
    if (timeoutMs > 0) {
      await this.qmp('system_powerdown', undefined, Math.min(timeoutMs, 10_000)).catch(() => undefined);
      const done = await this.#exitWithin(timeoutMs);
      if (done) return done;
    }
    const signal = (s: NodeJS.Signals) => {
      try {
        process.kill(pid, s);
      } catch {
        // gone already
      }
    };
    signal('SIGTERM');
    const termed = await this.#exitWithin(TERM_GRACE_MS);
    if (termed) return termed;
    signal('SIGKILL');
    return (await this.#exitWithin(TERM_GRACE_MS)) ?? this.#exited;
  }

  /**
   * How QEMU exited, or undefined after `ms`. Unlike the liveness poll, the timer keeps the
   * process alive: someone waits for this stop.
   */
  async #exitWithin(ms: number): Promise<InstanceExit | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, ms, undefined)));
    try {
      return await Promise.race([this.#exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Boots it again from its directory (qemu.json) on its overlays, which hold all its data
   * or, for a test instance, read the rest from the image this process serves.
   */
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
    this.#watch(q.child.pid);
  }

  /**
   * Leaves it running; this process forgets it. A test instance's image stops being served
   * (QEMU waits for the next process to serve it, reconnect-delay).
   */
  async detach(): Promise<void> {
    this.#console.stop();
    await this.#release();
  }

  /** Stops it and removes its directory's files (overlays included) and the directory. */
  async terminate(o: { timeoutMs?: number } = {}): Promise<void> {
    if (this.#terminated) return;
    await this.stop({ timeoutMs: o.timeoutMs ?? 60_000 });
    this.#console.stop();
    await this.#release();
    for (const name of await readdir(this.dir).catch(() => [])) {
      await rm(join(this.dir, name), { force: true, recursive: true });
    }
    await rmdir(this.dir).catch(() => undefined);
    this.#terminated = true;
  }
}
