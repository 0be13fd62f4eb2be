/**
 * LaunchApp / TerminateApp on this server's own machine (the launch host): every server of
 * the app's launch configuration becomes an instance booted from its latest image, group
 * by group in launch order, through src/launch (the image is served in place over NBD
 * under a copy-on-write overlay: nothing is copied).
 *
 * The app's launch state lives in its record (AppBody.launch) and the instances in the
 * `instances` table, so GetApp, `ferry instances list` and a restarted server all see them.
 * The QEMU processes and the NBD servers feeding them belong to this process: a server
 * that stops terminates its instances (their image would go away under them), and on
 * start marks any it finds from a previous process as terminated and removes their files.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { repositories, type Database, type InstanceRecord } from '../db/index.js';
import {
  InstanceStateError,
  NotFoundError,
  OperationNotPermittedError,
  toFerryError,
} from '../errors/index.js';
import {
  adoptInstance,
  launchInstance,
  newInstanceId,
  type AdoptedInstance,
  type Instance as LaunchedInstance,
} from '../launch/index.js';
import type { Repository } from '../store/index.js';
import type { AppBody, AppLaunchState } from './apps.js';
import { requireApp } from './apps.js';
import type { Clock } from './clock.js';
import type { LocalObjects } from './objects.js';
import { resolveLaunchOptions } from './launch-options.js';
import { bootFiles, imageDisks, type LaunchGroup, type LaunchStep } from './launch-plan.js';

/** An instance this process runs: launched here, or adopted from a previous process. */
type Instance = LaunchedInstance | AdoptedInstance;

/** What a launch is for: a plain LaunchApp, or the lifecycle's test or cutover launch. */
export type LaunchPurpose = 'launch' | 'test' | 'cutover';

/** How long TerminateApp lets a guest power off before QEMU is stopped. */
const GUEST_POWEROFF_MS = 10_000;

/** Default instance type when a launch configuration names none (SMS leaves it to EC2). */
export const DEFAULT_INSTANCE_TYPE = 't3.small';

export interface LaunchServiceOptions {
  readonly db: Database;
  readonly clock: Clock;
  readonly store: Repository;
  /** Where instance directories go (DATA_DIR/instances). */
  readonly instancesDir: string;
  /** The local bucket user data and configure scripts are read from. */
  readonly objects?: LocalObjects;
  readonly log?: { warn(obj: object, msg: string): void };
}

export class LaunchService {
  readonly #o: LaunchServiceOptions;
  readonly #live = new Map<string, Instance>();
  readonly #work = new Set<Promise<void>>();
  /** The launch in flight per app, for callers that wait for its outcome (the lifecycle). */
  readonly #inFlight = new Map<string, Promise<void>>();

  constructor(o: LaunchServiceOptions) {
    this.#o = o;
  }

  /**
   * Validates at once (launch configuration, an image per server); launches in the background.
   * `purpose` marks what the instances are for (a plain LaunchApp, or the lifecycle's test
   * or cutover launch); settled() waits for the outcome.
   */
  async launchApp(appId: string, purpose: LaunchPurpose = 'launch'): Promise<Record<string, never>> {
    const r = repositories(this.#o.db);
    const app = await requireApp(r, appId);
    const body = app.body as AppBody;
    const config = app.launchConfig as { groups: readonly LaunchGroup[] } | null;
    if (!config || config.groups.every((g) => g.servers.length === 0)) {
      throw new OperationNotPermittedError(
        `application ${appId} has no servers to launch; call PutAppLaunchConfiguration first`,
      );
    }
    const busy = body.launch?.status;
    if (busy === 'LAUNCH_PENDING' || busy === 'LAUNCH_IN_PROGRESS' || busy === 'LAUNCHED') {
      throw new OperationNotPermittedError(`application ${appId} is already ${busy}; terminate it first`);
    }
    const plan: LaunchStep[] = [];
    const groups = [...config.groups].sort((a, b) => (a.launchOrder ?? 1e9) - (b.launchOrder ?? 1e9));
    for (const group of groups) {
      for (const server of group.servers) {
        const imageId = await this.#latestImage(server.serverId);
        if (!imageId) {
          throw new OperationNotPermittedError(
            `server ${server.serverId} of application ${appId} has no replicated image yet; replicate it first`,
          );
        }
        plan.push({ group, server, imageId, boot: await bootFiles(this.#o.objects, server) });
      }
    }
    await this.#setState(appId, {
      status: 'LAUNCH_PENDING',
      message: 'Launch pending.',
      instanceIds: [],
      purpose,
    });
    const work = this.#launch(appId, body.name, plan, purpose).finally(() => {
      this.#work.delete(work);
      if (this.#inFlight.get(appId) === work) this.#inFlight.delete(appId);
    });
    this.#work.add(work);
    this.#inFlight.set(appId, work);
    return {};
  }

  /** The app's launch state once the launch in flight (if any) has ended. */
  async settled(appId: string): Promise<AppLaunchState | undefined> {
    await this.#inFlight.get(appId);
    const app = await requireApp(repositories(this.#o.db), appId);
    return (app.body as AppBody).launch;
  }

  async terminateApp(appId: string): Promise<Record<string, never>> {
    const r = repositories(this.#o.db);
    const app = await requireApp(r, appId);
    const state = (app.body as AppBody).launch;
    const instances = (await r.instances.forApp(appId)).filter((i) => i.state !== 'terminated');
    if (!state && instances.length === 0) {
      throw new OperationNotPermittedError(`application ${appId} is not launched`);
    }
    await this.#setState(appId, {
      ...(state ?? { instanceIds: [] }),
      status: 'TERMINATE_IN_PROGRESS',
      message: 'Terminating.',
    });
    // All at once: each guest gets its power-off window in parallel, not one after another.
    const failures: string[] = [];
    await Promise.all(
      instances.map((i) =>
        this.#terminate(i).catch((err) => failures.push(`${i.instanceId}: ${toFerryError(err).message}`)),
      ),
    );
    await this.#setState(
      appId,
      failures.length > 0
        ? { ...(state ?? { instanceIds: [] }), status: 'TERMINATE_FAILED', message: failures.join('; ') }
        : { instanceIds: [], status: 'TERMINATED', message: `Terminated ${instances.length} instance(s).` },
    );
    return {};
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
    await repositories(this.#o.db).instances.update(instanceId, { pid: live.pid });
    return this.#record(instanceId, 'running', 'Running.');
  }

  /** Terminates one instance: QEMU stopped, its overlay (its writes) and files removed. */
  async terminateInstance(instanceId: string): Promise<InstanceRecord> {
    const rec = await repositories(this.#o.db).instances.get(instanceId);
    if (!rec) throw new NotFoundError(`no instance ${instanceId}`, { resource: 'instance', instanceId });
    if (rec.state !== 'terminated') await this.#terminate(rec);
    return (await repositories(this.#o.db).instances.get(instanceId))!;
  }

  /**
   * Streams the image into each live instance of the app (Instance.materialize), so they
   * no longer depend on the store or on this process; `onProgress` gets the fraction done.
   */
  async materializeApp(appId: string, onProgress?: (fraction: number) => void): Promise<string[]> {
    const live = (await repositories(this.#o.db).instances.forApp(appId))
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
    const rec = await repositories(this.#o.db).instances.get(instanceId);
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
    const r = repositories(this.#o.db);
    await r.instances.update(instanceId, { state, statusMessage, updatedAt: this.#o.clock.now() });
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
    await Promise.allSettled([...this.#work]);
    const r = repositories(this.#o.db);
    for (const i of await r.instances.all()) {
      const live = this.#live.get(i.instanceId);
      if (!live) continue;
      if (live.materialized && live.state === 'running') {
        live.detach();
        this.#live.delete(i.instanceId);
        await r.instances
          .update(i.instanceId, {
            statusMessage: 'Running standalone; its launch host process stopped (the next one adopts it).',
            updatedAt: this.#o.clock.now(),
          })
          .catch(() => undefined);
        continue;
      }
      await this.#terminate(i, 0).catch(() => undefined);
    }
  }

  /**
   * Instances a previous process left (it stopped or crashed): standalone ones still
   * running are adopted; the others lost their image server with it and are removed.
   */
  async recover(): Promise<void> {
    const r = repositories(this.#o.db);
    for (const i of await r.instances.all()) {
      if (i.state === 'terminated' || this.#live.has(i.instanceId)) continue;
      const adopted = await adoptInstance(i.instanceId, i.dir);
      if (adopted) {
        this.#live.set(i.instanceId, adopted);
        this.#watchExit(i.instanceId, adopted);
        await r.instances.update(i.instanceId, {
          state: 'running',
          statusMessage: 'Running standalone (adopted after a restart of the launch host).',
          pid: adopted.pid,
          updatedAt: this.#o.clock.now(),
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
        updatedAt: this.#o.clock.now(),
      });
    }
  }

  async #launch(
    appId: string,
    appName: string,
    plan: readonly LaunchStep[],
    purpose: LaunchPurpose,
  ): Promise<void> {
    const r = repositories(this.#o.db);
    const launched: string[] = [];
    await this.#setState(appId, {
      status: 'LAUNCH_IN_PROGRESS',
      message: 'Launching.',
      instanceIds: [],
      purpose,
    });
    for (const { group, server, imageId, boot } of plan) {
      const id = newInstanceId();
      const type = server.instanceType ?? DEFAULT_INSTANCE_TYPE;
      const now = this.#o.clock.now();
      const record: InstanceRecord = {
        instanceId: id,
        appId,
        serverId: server.serverId,
        imageId,
        instanceType: type,
        state: 'pending',
        statusMessage: 'Launching.',
        dir: join(this.#o.instancesDir, id),
        pid: null,
        launchOrder: group.launchOrder ?? null,
        createdAt: now,
        updatedAt: now,
      };
      await r.instances.insert(record);
      try {
        const options = await resolveLaunchOptions(
          r,
          (await requireApp(r, appId)).body as AppBody,
          server.serverId,
        );
        const disks = await imageDisks(this.#o.store, imageId);
        const name = `${appName}-${server.logicalId ?? server.serverId}`
          .replace(/[^A-Za-z0-9._-]/g, '-')
          .slice(0, 64);
        const seeded = boot.userData !== undefined || boot.configureScript !== undefined;
        const instance = await launchInstance({
          id,
          dir: record.dir,
          name,
          disk: disks,
          type,
          ...options,
          ...(seeded ? { seed: { instanceId: id, hostname: name, ...boot } } : {}),
        });
        this.#live.set(id, instance);
        this.#watchExit(id, instance);
        await r.instances.update(id, {
          state: 'running',
          statusMessage: 'Running.',
          pid: instance.pid ?? null,
          updatedAt: this.#o.clock.now(),
        });
        launched.push(id);
        await this.#setState(appId, {
          status: 'LAUNCH_IN_PROGRESS',
          message: `Launched ${launched.join(', ')}.`,
          instanceIds: launched,
          purpose,
        });
      } catch (err) {
        const fe = toFerryError(err);
        await r.instances.update(id, {
          state: 'failed',
          statusMessage: `${fe.code}: ${fe.message}`,
          updatedAt: this.#o.clock.now(),
        });
        await this.#setState(appId, {
          status: launched.length > 0 ? 'PARTIALLY_LAUNCHED' : 'LAUNCH_FAILED',
          message:
            `Server ${server.serverId} (group ${group.serverGroupId}) failed to launch: ${fe.code}: ${fe.message}` +
            (launched.length > 0 ? ` Launched before it: ${launched.join(', ')}.` : ''),
          instanceIds: launched,
          purpose,
        });
        return; // a failed group stops the later launch-order groups
      }
    }
    await this.#setState(appId, {
      status: 'LAUNCHED',
      message: `Launched ${launched.length} instance(s): ${launched.join(', ')}.`,
      instanceIds: launched,
      latestLaunchTime: this.#o.clock.now(),
      purpose,
    });
  }

  /**
   * `timeoutMs`: how long the guest gets to power off (ACPI) before QEMU is killed. TerminateApp
   * gives it a little; a server shutting down gives none (its image server goes with it).
   */
  async #terminate(i: InstanceRecord, timeoutMs = GUEST_POWEROFF_MS): Promise<void> {
    const live = this.#live.get(i.instanceId);
    // Not "stopped" on its way out: the exit watcher leaves the record to this.
    this.#live.delete(i.instanceId);
    try {
      if (live) await live.terminate({ timeoutMs });
      else await rm(i.dir, { recursive: true, force: true });
    } catch (err) {
      if (live) this.#live.set(i.instanceId, live);
      throw err;
    }
    await repositories(this.#o.db).instances.update(i.instanceId, {
      state: 'terminated',
      statusMessage: 'Terminated.',
      pid: null,
      updatedAt: this.#o.clock.now(),
    });
  }

  /** The latest image of the server's live replication job. */
  async #latestImage(serverId: string): Promise<string | undefined> {
    const r = repositories(this.#o.db);
    const jobs = await r.jobs.forServer(serverId, [
      'PENDING',
      'ACTIVE',
      'FAILING',
      'PAUSED_ON_FAILURE',
      'COMPLETED',
    ]);
    return jobs.find((j) => j.latestAmiId)?.latestAmiId ?? undefined;
  }

  async #setState(appId: string, launch: AppLaunchState): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      const r = repositories(tx);
      const app = await requireApp(r, appId);
      const body = app.body as AppBody;
      await r.apps.update(appId, { body: { ...body, launch }, updatedAt: this.#o.clock.now() });
    });
  }
}
