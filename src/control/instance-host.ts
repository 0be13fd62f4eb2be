/**
 * The instances this process runs on the launch host: launched here or adopted from a
 * previous process. Stop / start / terminate one instance, stream images into an app's
 * instances (standalone), keep each instance's record in step with its QEMU, and on
 * shutdown and start decide which instances survive (docs/launch.md, "Server restarts").
 */
import { rm } from 'node:fs/promises';
import { repositories, type Database, type InstanceRecord } from '../db/index.js';
import { InstanceStateError, NotFoundError, toFerryError } from '../errors/index.js';
import {
  adoptInstance,
  adoptStoppedInstance,
  adoptTestInstance,
  instanceQemu,
  isMaterialized,
  type InstanceExit,
} from '../launch/index.js';
import type { Repository } from '../store/index.js';
import type { Clock } from './clock.js';
import { imageDisks } from './launch-plan.js';

/**
 * An instance this process knows live: launched here, adopted from a previous process,
 * or running on a remote launch host (hosts/remote-instance.ts; `remote` set).
 */
export interface Instance {
  readonly state: string;
  readonly exited: Promise<InstanceExit>;
  readonly pid: number | undefined;
  readonly materialized: boolean;
  /** Runs on a remote launch host: not this process's to adopt, kill or clean up. */
  readonly remote?: boolean;
  stop(o?: { timeoutMs?: number }): Promise<unknown>;
  start(): Promise<void>;
  terminate(o?: { timeoutMs?: number }): Promise<void>;
  materialize(o?: { onProgress?: (p: { done: number; total: number }) => void }): Promise<unknown>;
  consoleText(o?: { maxBytes?: number }): Promise<string>;
  /** Leaves it running and forgets it (a test instance's image stops being served here). */
  detach(): void | Promise<void>;
}

/** How long TerminateApp and StopInstances let a guest power off before QEMU is stopped. */
export const GUEST_POWEROFF_MS = 10_000;

export class InstanceHost {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #store: Repository | undefined;
  readonly #live = new Map<string, Instance>();
  /**
   * What stop() leaves for the next process, whose recover() takes it back. Off by default
   * (a library caller, or `ferry server` on PostgreSQL: no successor recovers): then only
   * running standalone instances are left (they need nothing from anyone) and the rest are
   * terminated. `ferry server` on its embedded database sets `stopped` (stopped instances
   * stay, to be started again) and, unless --terminate-test-instances-on-stop,
   * `testInstances` (test instances stay, running or stopped; the next process serves
   * their image again).
   */
  keepOnStop = { stopped: false, testInstances: false };

  /** `store`: where recover() reads the images of test instances a previous process left. */
  constructor(db: Database, clock: Clock, store?: Repository) {
    this.#db = db;
    this.#clock = clock;
    this.#store = store;
  }

  /** A newly launched instance: tracked, and its record follows its QEMU. */
  add(instanceId: string, instance: Instance): void {
    this.#live.set(instanceId, instance);
    this.#watchExit(instanceId, instance);
  }

  /** The live instance of that id, if this process has one. */
  live(instanceId: string): Instance | undefined {
    return this.#live.get(instanceId);
  }

  /** Lets go of an instance without touching it (its remote host no longer runs it). */
  forget(instanceId: string): void {
    this.#live.delete(instanceId);
  }

  /** Stops an instance (ACPI power-off, then signals); its overlay and image export stay. */
  async stopInstance(instanceId: string, timeoutMs = GUEST_POWEROFF_MS): Promise<InstanceRecord> {
    const live = await this.#liveInstance(instanceId);
    await live.stop({ timeoutMs });
    return this.#record(instanceId, 'stopped', 'Stopped.');
  }

  /** Boots a stopped instance again on its overlay (the guest's writes kept). */
  async startInstance(instanceId: string): Promise<InstanceRecord> {
    const live = await this.#liveInstance(instanceId);
    await live.start();
    this.#watchExit(instanceId, live);
    await repositories(this.#db).instances.update(instanceId, { pid: live.pid ?? null });
    return this.#record(instanceId, 'running', 'Running.');
  }

  /** Terminates one instance: QEMU stopped, its overlay (its writes) and files removed. */
  async terminateInstance(instanceId: string): Promise<InstanceRecord> {
    const rec = await repositories(this.#db).instances.get(instanceId);
    if (!rec) throw new NotFoundError(`no instance ${instanceId}`, { resource: 'instance', instanceId });
    if (rec.state !== 'terminated') await this.terminate(rec);
    return (await repositories(this.#db).instances.get(instanceId))!;
  }

  /**
   * Streams the image into each live instance of the app (Instance.materialize), so they
   * no longer depend on the store or on this process; `onProgress` gets the fraction done.
   */
  async materializeApp(appId: string, onProgress?: (fraction: number) => void): Promise<string[]> {
    const live = (await repositories(this.#db).instances.forApp(appId))
      .map((i) => [i.instanceId, this.#live.get(i.instanceId)] as const)
      .filter((x): x is readonly [string, Instance] => x[1] !== undefined);
    const progress = new Map<string, { done: number; total: number }>();
    await Promise.all(
      live.map(async ([id, inst]) => {
        await inst.materialize({
          onProgress: (p) => {
            progress.set(id, p);
            const done = [...progress.values()].reduce((n, x) => n + x.done, 0);
            const total = [...progress.values()].reduce((n, x) => n + x.total, 0);
            onProgress?.(total > 0 ? done / total : 0);
          },
        });
        await this.#record(
          id,
          inst.state === 'running' ? 'running' : 'stopped',
          'Running standalone (image streamed in).',
        );
      }),
    );
    return live.map(([id]) => id);
  }

  /** Whether the instance holds all its data (materialised), as far as this host knows. */
  isMaterialized(instanceId: string): boolean | undefined {
    return this.#live.get(instanceId)?.materialized;
  }

  async #liveInstance(instanceId: string): Promise<Instance> {
    const rec = await repositories(this.#db).instances.get(instanceId);
    if (!rec) throw new NotFoundError(`no instance ${instanceId}`, { resource: 'instance', instanceId });
    const live = this.#live.get(instanceId);
    if (!live) {
      throw new InstanceStateError(`instance ${instanceId} is ${rec.state}`, {
        instanceId,
        state: rec.state,
      });
    }
    return live;
  }

  async #record(instanceId: string, state: string, statusMessage: string): Promise<InstanceRecord> {
    const r = repositories(this.#db);
    await r.instances.update(instanceId, { state, statusMessage, updatedAt: this.#clock.now() });
    return (await r.instances.get(instanceId))!;
  }

  /** A guest that powers off (or a QEMU that dies) shows as stopped, not running. */
  #watchExit(instanceId: string, instance: Instance): void {
    const boot = instance.exited;
    void boot.then(async (exit) => {
      // A later start() replaced this boot, or terminate() is recording its own state.
      if (instance.exited !== boot || instance.state !== 'stopped' || !this.#live.has(instanceId)) return;
      const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
      await this.#record(instanceId, 'stopped', `Stopped (QEMU ended: ${how}).`).catch(() => undefined);
    });
  }

  /** The serial console log of an instance so far (bounded). */
  async consoleText(instanceId: string): Promise<string | undefined> {
    const live = this.#live.get(instanceId);
    return live ? live.consoleText() : undefined;
  }

  /**
   * Server shutdown: instances are left to the next process as keepOnStop says — running
   * standalone ones always; test ones have their image export closed with this process
   * (QEMU holds guest reads until the next one serves it) — and the others terminated.
   */
  async stop(): Promise<void> {
    const r = repositories(this.#db);
    for (const i of await r.instances.all()) {
      const live = this.#live.get(i.instanceId);
      if (!live) continue;
      if (live.remote) {
        // Its launch host keeps it; the host's next hello tells the next server process.
        this.#live.delete(i.instanceId);
        continue;
      }
      const state = live.state;
      const kept =
        (live.materialized || this.keepOnStop.testInstances) &&
        (state === 'running' || (state === 'stopped' && this.keepOnStop.stopped));
      if (!kept) {
        await this.terminate(i, 0).catch(() => undefined);
        continue;
      }
      this.#live.delete(i.instanceId);
      await Promise.resolve(live.detach()).catch(() => undefined);
      const next = live.materialized ? 'the next one adopts it' : 'the next one serves its image again';
      await r.instances
        .update(i.instanceId, {
          statusMessage:
            state === 'stopped'
              ? `Stopped; its launch host process stopped (${next}).`
              : `Running${live.materialized ? ' standalone' : ''}; its launch host process stopped (${next}).`,
          updatedAt: this.#clock.now(),
        })
        .catch(() => undefined);
    }
  }

  /**
   * Instances a previous process left (it stopped or crashed). Standalone ones are adopted
   * — running, or stopped to be started again; test ones get their image served again
   * first (QEMU reconnects to the export). The rest — QEMU gone while recorded running,
   * image gone or unreadable, never started — are removed (QEMU killed, directory deleted)
   * and marked terminated with the reason.
   */
  async recover(): Promise<void> {
    const r = repositories(this.#db);
    for (const i of await r.instances.all()) {
      // Remote hosts' instances are reconciled when their host says hello (hosts/service.ts).
      if (i.state === 'terminated' || i.hostId !== null || this.#live.has(i.instanceId)) continue;
      const adopted = await this.#adopt(i).catch((err: unknown) => toFerryError(err).message);
      if (typeof adopted !== 'string') {
        this.#live.set(i.instanceId, adopted);
        const how = adopted.materialized ? 'adopted' : 'its image served again and adopted';
        if (adopted.state === 'stopped') {
          // Not watched: it is not running; startInstance() watches the boot it makes.
          await r.instances.update(i.instanceId, {
            statusMessage: `Stopped (${how} after a restart of the launch host).`,
            pid: null,
            updatedAt: this.#clock.now(),
          });
          continue;
        }
        this.#watchExit(i.instanceId, adopted);
        await r.instances.update(i.instanceId, {
          state: 'running',
          statusMessage: `Running${adopted.materialized ? ' standalone' : ''} (${how} after a restart of the launch host).`,
          pid: adopted.pid ?? null,
          updatedAt: this.#clock.now(),
        });
        continue;
      }
      // Only a pid verified as this instance's QEMU is signalled (never a recycled one).
      const pid = await instanceQemu(i.dir);
      if (pid !== undefined) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await rm(i.dir, { recursive: true, force: true }).catch(() => undefined);
      await r.instances.update(i.instanceId, {
        state: 'terminated',
        statusMessage: `Terminated after a restart of the launch host: ${adopted}.`,
        pid: null,
        updatedAt: this.#clock.now(),
      });
    }
  }

  /** The instance taken back, or why it cannot be (a sentence). */
  async #adopt(i: InstanceRecord): Promise<Instance | string> {
    if (i.state !== 'running' && i.state !== 'stopped') return `it was ${i.state}`;
    const running = i.state === 'running';
    if (running && (await instanceQemu(i.dir)) === undefined) return 'its QEMU no longer runs';
    if (await isMaterialized(i.dir)) {
      if (!running) return adoptStoppedInstance(i.instanceId, i.dir);
      return (await adoptInstance(i.instanceId, i.dir)) ?? 'its QEMU does not answer on QMP';
    }
    if (!this.#store) return 'it read its image through the previous process';
    let disks;
    try {
      disks = await imageDisks(this.#store, i.imageId);
    } catch (err) {
      const fe = toFerryError(err);
      return `its image ${i.imageId} cannot be read (${fe.code}: ${fe.message})`;
    }
    return running
      ? adoptTestInstance(i.instanceId, i.dir, disks)
      : adoptStoppedInstance(i.instanceId, i.dir, disks);
  }

  /**
   * `timeoutMs`: how long the guest gets to power off (ACPI) before QEMU is killed. TerminateApp
   * gives it a little; a server shutting down gives none (its image server goes with it).
   */
  async terminate(i: InstanceRecord, timeoutMs = GUEST_POWEROFF_MS): Promise<void> {
    const live = this.#live.get(i.instanceId);
    // Not "stopped" on its way out: the exit watcher leaves the record to this.
    this.#live.delete(i.instanceId);
    try {
      if (live) await live.terminate({ timeoutMs });
      // A remote host that is away terminates it when it says hello again (hosts/service.ts).
      else if (i.hostId === null) await rm(i.dir, { recursive: true, force: true });
    } catch (err) {
      if (live) this.#live.set(i.instanceId, live);
      throw err;
    }
    await repositories(this.#db).instances.update(i.instanceId, {
      state: 'terminated',
      statusMessage: 'Terminated.',
      pid: null,
      updatedAt: this.#clock.now(),
    });
  }
}
