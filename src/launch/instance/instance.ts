/**
 * A running instance: one QEMU process booting store images through copy-on-write
 * overlays whose backing files are this process's NBD exports (docs/launch.md).
 *
 * Lifecycle: `running` → `stopping` (stop(): ACPI power button, then SIGTERM, then
 * SIGKILL) → `stopped` (QEMU exited, by stop() or on its own: guest power-off, crash) →
 * `running` again (start(): QEMU boots the same overlays, the NBD server never stopped) or
 * `terminated` (terminate(): stopped, and every file, socket and the NBD server removed;
 * the image disks closed). The overlay holds the instance's writes until terminate().
 */
import { rm, rmdir } from 'node:fs/promises';
import type { ChildProcess } from 'node:child_process';
import type { Disk } from '../../disk/index.js';
import { InstanceStateError } from '../../errors/index.js';
import type { InstanceType } from '../instance-types.js';
import type { NbdServer } from '../nbd-server/server.js';
import { DEFAULT_CONSOLE_READ_BYTES, type ConsoleLog } from './console-log.js';
import type { Accelerator } from './host.js';
import type { DiskBus, Firmware, NicModel } from './options.js';
import type { QemuProcess } from './qemu-process.js';
import { streamBackings, type StreamProgress } from './materialize.js';
import { QmpConnection } from './qmp.js';

export type InstanceState = 'starting' | 'running' | 'stopping' | 'stopped' | 'terminated';

export interface InstanceExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Time spent before QEMU was spawned (NBD server, overlays) and until QMP answered. */
export interface LaunchTimings {
  readonly prepareMs: number;
  readonly startMs: number;
}

export interface InstanceInfo {
  readonly id: string;
  readonly name: string;
  readonly dir: string;
  readonly type: InstanceType;
  readonly accel: Accelerator;
  readonly bus: DiskBus;
  readonly nic: NicModel;
  readonly mac: string;
  readonly firmware: Firmware;
  readonly overlays: readonly string[];
  readonly nbdSocket: string;
  readonly qmpSocket: string;
  readonly pidFile: string;
  readonly consoleLog: string;
}

/** What terminate() (or a failed launch) must remove. */
export interface InstanceResources {
  readonly dir: string;
  /** The launch created `dir`: it is removed too when empty. */
  createdDir: boolean;
  /** Files to delete (overlays, pid file, UEFI variables, sockets). */
  readonly files: string[];
  nbd?: NbdServer | undefined;
  console?: ConsoleLog;
  readonly disks: readonly Disk[];
  /** materialize() closed the disks already. */
  disksReleased?: boolean;
}

/** Releases everything; collects failures instead of stopping at the first. */
export async function releaseResources(res: InstanceResources, keepConsoleLog: boolean): Promise<void> {
  const results = await Promise.allSettled([
    res.nbd?.close(),
    ...(res.disksReleased ? [] : res.disks.map((d) => d.close())),
    ...res.files.map((f) => rm(f, { force: true })),
    keepConsoleLog ? res.console?.stop() : res.console?.remove(),
  ]);
  if (res.createdDir && !keepConsoleLog) await rmdir(res.dir).catch(() => {}); // only when empty
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
/** After SIGTERM QEMU flushes and exits within a second or two; then SIGKILL. */
const TERM_GRACE_MS = 5000;
/** Default wait for a guest to power off after the ACPI power button. */
export const DEFAULT_STOP_TIMEOUT_MS = 60_000;

export class Instance implements InstanceInfo {
  readonly id: string;
  readonly name: string;
  readonly dir: string;
  readonly type: InstanceType;
  readonly accel: Accelerator;
  readonly bus: DiskBus;
  readonly nic: NicModel;
  readonly mac: string;
  readonly firmware: Firmware;
  readonly overlays: readonly string[];
  readonly nbdSocket: string;
  readonly qmpSocket: string;
  readonly pidFile: string;
  readonly consoleLog: string;
  readonly timings: LaunchTimings;
  #child: ChildProcess & { pid: number };
  #exited!: Promise<InstanceExit>;
  readonly #relaunch: () => Promise<QemuProcess>;
  #starting: Promise<void> | undefined;
  readonly #res: InstanceResources;
  readonly #console: ConsoleLog;
  #exit: InstanceExit | undefined;
  #stopping: Promise<InstanceExit> | undefined;
  #terminating: Promise<void> | undefined;
  #terminated = false;
  #materialized = false;

  /** Made by launchInstance once QEMU answers on QMP. */
  constructor(
    info: InstanceInfo,
    child: ChildProcess & { pid: number },
    exited: Promise<InstanceExit>,
    res: InstanceResources & { console: ConsoleLog },
    timings: LaunchTimings,
    relaunch: () => Promise<QemuProcess>,
  ) {
    this.id = info.id;
    this.name = info.name;
    this.dir = info.dir;
    this.type = info.type;
    this.accel = info.accel;
    this.bus = info.bus;
    this.nic = info.nic;
    this.mac = info.mac;
    this.firmware = info.firmware;
    this.overlays = info.overlays;
    this.nbdSocket = info.nbdSocket;
    this.qmpSocket = info.qmpSocket;
    this.pidFile = info.pidFile;
    this.consoleLog = info.consoleLog;
    this.timings = timings;
    this.#child = child;
    this.#relaunch = relaunch;
    this.#res = res;
    this.#console = res.console;
    this.#watch(exited);
  }

  #watch(exited: Promise<InstanceExit>): void {
    this.#exited = exited.then((e) => {
      this.#exit = e;
      this.#console.stop();
      return e;
    });
  }

  /** QEMU's process id (of the current boot). */
  get pid(): number {
    return this.#child.pid;
  }

  /** Resolves when QEMU (of the current boot) exits, for whatever reason. */
  get exited(): Promise<InstanceExit> {
    return this.#exited;
  }

  /**
   * Boots a stopped instance again: QEMU on the same overlays (the guest's writes kept),
   * backed by the same NBD exports. Resolves once QEMU answers on QMP; a running instance
   * is left as it is; a terminated one cannot start (FERRY_INSTANCE_STATE).
   */
  start(): Promise<void> {
    if (this.#terminated || this.#terminating) {
      return Promise.reject(
        new InstanceStateError(`instance ${this.id} is terminated`, { instanceId: this.id }),
      );
    }
    if (!this.#exit) return this.#starting ?? Promise.resolve();
    this.#starting ??= (async () => {
      try {
        this.#console.start();
        const next = await this.#relaunch();
        this.#child = next.child;
        this.#exit = undefined;
        this.#stopping = undefined;
        this.#watch(next.exited);
      } catch (err) {
        this.#console.stop();
        throw err;
      } finally {
        this.#starting = undefined;
      }
    })();
    return this.#starting;
  }

  get state(): InstanceState {
    if (this.#terminated) return 'terminated';
    if (this.#starting) return 'starting';
    if (this.#exit) return 'stopped';
    return this.#stopping ? 'stopping' : 'running';
  }

  /** How QEMU exited (undefined while it runs). */
  get exit(): InstanceExit | undefined {
    return this.#exit;
  }

  /** Reads served to QEMU from the image(s): requests, bytes, disk errors. */
  get nbdStats(): { readonly requests: number; readonly bytesRead: number; readonly errors: number } {
    return this.#res.nbd?.stats ?? { requests: 0, bytesRead: 0, errors: 0 };
  }

  /** The last `maxBytes` (default 1 MiB, at most 16 MiB) of the serial console so far. */
  consoleText(options: { maxBytes?: number } = {}): Promise<string> {
    return this.#console.read(options.maxBytes ?? DEFAULT_CONSOLE_READ_BYTES);
  }

  /**
   * Waits until the console shows `pattern` (checked every 250 ms over the last 1 MiB);
   * resolves the console text then, or undefined when QEMU exited without it or the time
   * ran out. A boot check for validation: "login:", a marker, cloud-init's final message.
   */
  async waitForConsole(
    pattern: string | RegExp,
    options: { timeoutMs: number },
  ): Promise<string | undefined> {
    const deadline = Date.now() + options.timeoutMs;
    const found = (t: string) => (typeof pattern === 'string' ? t.includes(pattern) : pattern.test(t));
    for (;;) {
      const exited = this.#exit !== undefined;
      const text = await this.consoleText();
      if (found(text)) return text;
      if (exited || Date.now() >= deadline) return undefined;
      await Promise.race([sleep(Math.min(250, Math.max(1, deadline - Date.now()))), this.exited]);
    }
  }

  /** Runs one QMP command on the instance (connects, runs, disconnects). */
  async qmp(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<unknown> {
    const q = await QmpConnection.connect(this.qmpSocket, timeoutMs);
    try {
      return await q.execute(command, args, timeoutMs);
    } finally {
      q.close();
    }
  }

  /** Every disk's data is in its overlay: the instance no longer reads the image (materialize()). */
  get materialized(): boolean {
    return this.#materialized;
  }

  /**
   * Copies what the overlays still read from the image into them while the guest runs,
   * then stops serving the image (NBD server closed, image disks released): from then on
   * the instance needs neither the store nor this process. A stopped instance is started
   * for it and stopped again. Idempotent.
   */
  async materialize(
    o: { onProgress?: (p: StreamProgress) => void; signal?: AbortSignal } = {},
  ): Promise<void> {
    if (this.#materialized) return;
    if (this.#terminated || this.#terminating) {
      throw new InstanceStateError(`instance ${this.id} is terminated`, { instanceId: this.id });
    }
    const wasStopped = this.#exit !== undefined;
    if (wasStopped) await this.start();
    await streamBackings(this, o);
    this.#materialized = true;
    if (wasStopped) await this.stop({ timeoutMs: 0 });
    // The image is no longer read: release it (a later start boots the standalone overlays).
    await Promise.allSettled([this.#res.nbd?.close(), ...this.#res.disks.map((d) => d.close())]);
    this.#res.nbd = undefined;
    this.#res.disksReleased = true;
  }

  /**
   * Leaves QEMU running and lets this process forget it: the instance outlives its launch
   * host process and the next one adopts it (adopt.ts). A test instance's image stops
   * being served here (NBD server closed, disks released); QEMU holds the guest's reads
   * until the next process serves it again (reconnect-delay, overlay.ts).
   */
  async detach(): Promise<void> {
    this.#console.stop();
    this.#child.unref();
    if (this.#res.disksReleased) return;
    await Promise.allSettled([this.#res.nbd?.close(), ...this.#res.disks.map((d) => d.close())]);
    this.#res.nbd = undefined;
    this.#res.disksReleased = true;
  }

  /**
   * Stops the guest: ACPI power button (QMP system_powerdown), and if it has not powered
   * off within `timeoutMs`, SIGTERM (QEMU closes its images cleanly), then SIGKILL.
   * Resolves how QEMU exited. The overlay and the NBD server stay (terminate removes them).
   */
  async stop(options: { timeoutMs?: number } = {}): Promise<InstanceExit> {
    // A start in flight finishes first: stopping half-started QEMU would race its spawn.
    await this.#starting?.catch(() => undefined);
    if (this.#exit) return this.#exit;
    this.#stopping ??= this.#stop(options.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
    return this.#stopping;
  }

  async #stop(timeoutMs: number): Promise<InstanceExit> {
    if (timeoutMs > 0) {
      try {
        await this.qmp('system_powerdown', undefined, Math.min(timeoutMs, 10_000));
      } catch {
        // QEMU may be exiting or hung: the signals below settle it.
      }
      const done = await Promise.race([this.exited, sleep(timeoutMs).then(() => undefined)]);
      if (done) return done;
    }
    this.#child.kill('SIGTERM');
    const termed = await Promise.race([this.exited, sleep(TERM_GRACE_MS).then(() => undefined)]);
    if (termed) return termed;
    this.#child.kill('SIGKILL');
    return this.exited;
  }

  /**
   * Stops the instance (as stop(), `timeoutMs` 0 = no guest shutdown, straight to
   * signals) and removes everything it made: overlays (its writes), sockets, pid file,
   * UEFI variables, console log (unless `keepConsoleLog`), the directory if the launch
   * created it; stops the NBD server and closes the image disks. Idempotent.
   */
  terminate(options: { timeoutMs?: number; keepConsoleLog?: boolean } = {}): Promise<void> {
    this.#terminating ??= (async () => {
      await this.stop({ timeoutMs: options.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS });
      await releaseResources(this.#res, options.keepConsoleLog ?? false);
      this.#terminated = true;
    })();
    return this.#terminating;
  }
}
