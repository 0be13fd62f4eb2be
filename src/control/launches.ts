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
import { join } from 'node:path';
import { repositories, type Database, type InstanceRecord } from '../db/index.js';
import { LaunchHostUnavailableError, OperationNotPermittedError, toFerryError } from '../errors/index.js';
import type { LinkSlot } from '../link/index.js';
import { getImage } from '../store/index.js';
import { launchRemote, seedParams } from './hosts/launch-remote.js';
import type { HostService } from './hosts/service.js';
import { launchInstance, newInstanceId } from '../launch/index.js';
import type { Repository } from '../store/index.js';
import type { AppBody, AppLaunchState } from './apps.js';
import { requireApp } from './apps.js';
import type { Clock } from './clock.js';
import type { LocalObjects } from './objects.js';
import { pinnedImage, resolveLaunchOptions } from './launch-options.js';
import { freeLoopbackPort, type GroupMember, type LaunchValidator } from './validation/run.js';
import { bootFiles, imageDisks, type LaunchGroup, type LaunchStep } from './launch-plan.js';
import { InstanceHost } from './instance-host.js';

/** What a launch is for: a plain LaunchApp, or the lifecycle's test or cutover launch. */
export type LaunchPurpose = 'launch' | 'test' | 'cutover';

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
  /** Runs each group's checks and the app's validations during a launch. */
  readonly validator?: LaunchValidator;
  readonly log?: { warn(obj: object, msg: string): void };
  /** Remote launch hosts (placement by the server's launch options `host`). */
  readonly hosts?: HostService;
}

export class LaunchService {
  readonly #o: LaunchServiceOptions;
  /** The instances this process runs (stop/start/terminate one, standalone, restarts). */
  readonly host: InstanceHost;
  readonly #work = new Set<Promise<void>>();
  /** The launch in flight per app, for callers that wait for its outcome (the lifecycle). */
  readonly #inFlight = new Map<string, Promise<void>>();

  constructor(o: LaunchServiceOptions) {
    this.#o = o;
    this.host = new InstanceHost(o.db, o.clock, o.store);
    o.hosts?.bind(this.host);
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
    if (
      busy === 'LAUNCH_PENDING' ||
      busy === 'LAUNCH_IN_PROGRESS' ||
      busy === 'VALIDATION_IN_PROGRESS' ||
      busy === 'LAUNCHED'
    ) {
      throw new OperationNotPermittedError(`application ${appId} is already ${busy}; terminate it first`);
    }
    const plan: LaunchStep[] = [];
    const groups = [...config.groups].sort((a, b) => (a.launchOrder ?? 1e9) - (b.launchOrder ?? 1e9));
    for (const group of groups) {
      for (const server of group.servers) {
        // A cutover launches what its final run just made; other launches honour a pin.
        const pinned = purpose === 'cutover' ? undefined : pinnedImage(body, server.serverId);
        const imageId = pinned ?? (await this.#latestImage(server.serverId));
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
        this.host.terminate(i).catch((err) => failures.push(`${i.instanceId}: ${toFerryError(err).message}`)),
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

  /** Server shutdown: launches in flight end first, then the host decides what survives. */
  async stop(): Promise<void> {
    await Promise.allSettled([...this.#work]);
    await this.host.stop();
  }

  /** Instances a previous process left (adopted, or removed). */
  recover(): Promise<void> {
    return this.host.recover();
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
    const members: GroupMember[] = [];
    for (let step = 0; step < plan.length; step++) {
      const { group, server, imageId, boot } = plan[step]!;
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
        hostId: null,
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
        const name = `${appName}-${server.logicalId ?? server.serverId}`
          .replace(/[^A-Za-z0-9._-]/g, '-')
          .slice(0, 64);
        const seeded = boot.userData !== undefined || boot.configureScript !== undefined;
        // Guest ports the server's checks probe, forwarded to free loopback ports (user network).
        const ports =
          (options.network?.startsWith('tap:')
            ? []
            : await this.#o.validator?.probedPorts(appId, server.serverId)) ?? [];
        const { host: where, ...qemuOptions } = options;
        const placed = await this.#place(where);
        if (placed) {
          // The host reads the image through the server: it may from now on (hosts/service.ts).
          await r.instances.update(id, { hostId: placed.hostId, dir: `${placed.hostId}:${id}` });
          const instance = await launchRemote(placed, {
            instanceId: id,
            name,
            imageId,
            disks: (await getImage(this.#o.store, imageId)).disks.length,
            type,
            options: qemuOptions,
            guestPorts: ports,
            ...(seeded ? { seed: seedParams(id, name, boot) } : {}),
          });
          this.host.add(id, instance);
          members.push({
            serverId: server.serverId,
            instanceId: id,
            consoleLog: '',
            forwards: instance.forwards,
            consoleText: () => instance.consoleText(),
            stopped: () => instance.state !== 'running',
            probe: (check, timeoutMs) => instance.probe(check, timeoutMs),
          });
        } else {
          const forwards = await Promise.all(
            ports.map(async (guestPort) => ({ guestPort, hostPort: await freeLoopbackPort() })),
          );
          const instance = await launchInstance({
            id,
            dir: record.dir,
            name,
            disk: await imageDisks(this.#o.store, imageId),
            type,
            ...qemuOptions,
            ...(forwards.length > 0 ? { forwards } : {}),
            ...(seeded ? { seed: { instanceId: id, hostname: name, ...boot } } : {}),
          });
          this.host.add(id, instance);
          await r.instances.update(id, { pid: instance.pid ?? null });
          members.push({
            serverId: server.serverId,
            instanceId: id,
            consoleLog: instance.consoleLog,
            forwards: new Map(forwards.map((f) => [f.guestPort, f.hostPort])),
            consoleText: () => instance.consoleText(),
            stopped: () => instance.state !== 'running',
          });
        }
        await r.instances.update(id, {
          state: 'running',
          statusMessage: placed ? `Running on launch host ${placed.hostId}.` : 'Running.',
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
      // The group is up: its checks pass before the next group starts.
      const last = step === plan.length - 1 || plan[step + 1]!.group !== group;
      if (
        last &&
        !(await this.#validate(
          appId,
          members.filter((m) => group.servers.some((x) => x.serverId === m.serverId)),
          launched,
          purpose,
          `group ${group.serverGroupId}`,
        ))
      )
        return;
    }
    if (!(await this.#validate(appId, members, launched, purpose, 'the application'))) return;
    await this.#setState(appId, {
      status: 'LAUNCHED',
      message: `Launched ${launched.length} instance(s): ${launched.join(', ')}.`,
      instanceIds: launched,
      latestLaunchTime: this.#o.clock.now(),
      purpose,
    });
  }

  /**
   * Runs a group's checks (or, for 'the application', the app-level validations) and says
   * whether the launch may go on; a failure ends the launch with the reason. The instances
   * stay for inspection (TerminateApp, or the lifecycle's revert, removes them).
   */
  async #validate(
    appId: string,
    members: readonly GroupMember[],
    launched: readonly string[],
    purpose: LaunchPurpose,
    what: string,
  ): Promise<boolean> {
    const v = this.#o.validator;
    if (!v) return true;
    await this.#setState(appId, {
      status: 'VALIDATION_IN_PROGRESS',
      message: `Validating ${what}.`,
      instanceIds: launched,
      purpose,
    });
    // A validator that throws (a database error, a missing script) fails the launch, never the process.
    const r = await (
      what === 'the application' ? v.validateApp(appId, members) : v.validateGroup(appId, members)
    ).catch((err: unknown) => {
      const fe = toFerryError(err);
      return { ok: false, message: `${fe.code}: ${fe.message}` };
    });
    if (r.ok) return true;
    await this.#setState(appId, {
      status: 'LAUNCH_FAILED',
      message: `Validation of ${what} failed: ${r.message}. Later groups were not launched; instances ${launched.join(', ')} are kept for inspection.`,
      instanceIds: launched,
      purpose,
    });
    return false;
  }

  /** The launch host a server's launch goes to (undefined: this machine). */
  async #place(where: string | undefined): Promise<{ hostId: string; slot: LinkSlot } | undefined> {
    if (!where || where === 'local') return undefined;
    if (!this.#o.hosts) {
      if (where === 'auto') return undefined;
      throw new LaunchHostUnavailableError(
        `server launch options name launch host ${where}, but this server takes no remote hosts (start it with --connector-listen)`,
        { hostId: where },
      );
    }
    return this.#o.hosts.place(where);
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
