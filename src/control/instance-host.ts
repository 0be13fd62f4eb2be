/**
 * The instances this process runs on the launch host: launched here or adopted from a
 * previous process. Stop / start / terminate one instance, stream images into an app's
 * instances (standalone), keep each instance's record in step with its QEMU, and on
 * shutdown and start decide which instances survive (docs/launch.md, "Server restarts").
 */
import { rm } from 'node:fs/promises';
import { repositories, type Database, type InstanceRecord } from '../db/index.js';
import { InstanceStateError, NotFoundError } from '../errors/index.js';
import { adoptInstance, type InstanceExit } from '../launch/index.js';
import type { Clock } from './clock.js';

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
  detach(): void;
}

/** How long TerminateApp and StopInstances let a guest power off before QEMU is stopped. */
export const GUEST_POWEROFF_MS = 10_000;

export class InstanceHost {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #live = new Map<string, Instance>();

  constructor(db: Database, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
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
   * Server shutdown: waits for launches in flight, then terminates this process's
   * instances — except standalone (materialised) running ones, which keep running and are
   * adopted by the next process (recover()).
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
      if (live.materialized && live.state === 'running') {
        live.detach();
        this.#live.delete(i.instanceId);
        await r.instances
          .update(i.instanceId, {
            statusMessage: 'Running standalone; its launch host process stopped (the next one adopts it).',
            updatedAt: this.#clock.now(),
          })
          .catch(() => undefined);
        continue;
      }
      await this.terminate(i, 0).catch(() => undefined);
    }
  }

  /**
   * Instances a previous process left (it stopped or crashed): standalone ones still
   * running are adopted; the others lost their image server with it and are removed.
   */
  async recover(): Promise<void> {
    const r = repositories(this.#db);
    for (const i of await r.instances.all()) {
      // Remote hosts' instances are reconciled when their host says hello (hosts/service.ts).
      if (i.state === 'terminated' || i.hostId !== null || this.#live.has(i.instanceId)) continue;
      const adopted = await adoptInstance(i.instanceId, i.dir);
      if (adopted) {
        this.#live.set(i.instanceId, adopted);
        this.#watchExit(i.instanceId, adopted);
        await r.instances.update(i.instanceId, {
          state: 'running',
          statusMessage: 'Running standalone (adopted after a restart of the launch host).',
          pid: adopted.pid,
          updatedAt: this.#clock.now(),
        });
        continue;
      }
      if (i.pid) {
        try {
          process.kill(i.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await rm(i.dir, { recursive: true, force: true }).catch(() => undefined);
      await r.instances.update(i.instanceId, {
        state: 'terminated',
        statusMessage: 'Terminated: the server that hosted it stopped.',
        pid: null,
        updatedAt: this.#clock.now(),
      });
    }
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
