/**
 * The migration lifecycle of applications (docs/launch.md, "Lifecycle"): test launches,
 * revert, cutover (a final replication run, then the cutover launch), finalize, archive,
 * and waves of apps moved together. Launches go through the launch host (launches.ts);
 * the final run through the replication jobs. Long actions (a test launch, a cutover) run
 * in the background; their outcome moves the app on, or back with the reason.
 */
import { repositories, type Database } from '../../db/index.js';
import {
  LifecycleFailedError,
  LifecycleTransitionError,
  OperationNotPermittedError,
  toFerryError,
} from '../../errors/index.js';
import type { AppBody } from '../apps.js';
import { requireApp } from '../apps.js';
import type { Clock } from '../clock.js';
import type { JobService } from '../jobs.js';
import type { LaunchService } from '../launches.js';
import { finalReplication, liveJobs } from './final-sync.js';
import { effectiveState, move, type LifecycleBody } from './record.js';
import { ACTION_FROM, type LifecycleAction, type LifecycleState } from './states.js';

export interface LifecycleOptions {
  readonly db: Database;
  readonly clock: Clock;
  readonly jobs: JobService;
  readonly launcher?: LaunchService | undefined;
  /** How often a cutover reads its final runs' states (default 1 s). */
  readonly pollMs?: number;
  /** Longest a cutover's final replication may take (default 4 h). */
  readonly finalReplicationTimeoutMs?: number;
}

const BUSY_LAUNCH = new Set([
  'LAUNCH_PENDING',
  'LAUNCH_IN_PROGRESS',
  'VALIDATION_IN_PROGRESS',
  'TERMINATE_IN_PROGRESS',
]);

export class LifecycleService {
  readonly #o: LifecycleOptions;
  readonly #work = new Map<string, Promise<void>>();
  /** Cutover instances streaming their image in (by app), for finalize and the view. */
  readonly #streaming = new Map<string, { fraction: number; error: string | undefined; done: boolean }>();
  readonly #stop = new AbortController();

  constructor(o: LifecycleOptions) {
    this.#o = o;
  }

  async getAppLifecycle(input: { appId: string }) {
    const r = repositories(this.#o.db);
    const app = await requireApp(r, input.appId);
    const body = app.body as LifecycleBody;
    const { state, message, servers } = await effectiveState(r, body);
    const launch = body.launch;
    const instances = (await r.instances.forApp(app.appId)).filter((i) => i.state !== 'terminated');
    return {
      appId: app.appId,
      state,
      statusMessage: message,
      // A test launch or cutover of this app running in this process.
      actionInProgress: this.#work.has(app.appId),
      ...(body.wave ? { waveName: body.wave } : {}),
      ...(body.lifecycle ? { updatedAt: body.lifecycle.updatedAt } : {}),
      ...(launch?.purpose ? { launchPurpose: launch.purpose } : {}),
      servers: servers.map((s) => {
        const i = instances.find((x) => x.serverId === s.serverId);
        return {
          serverId: s.serverId,
          ...(s.imageId ? { latestImageId: s.imageId } : {}),
          ...(i ? { instanceId: i.instanceId, instanceState: i.state } : {}),
          ...(i && this.#o.launcher?.host.isMaterialized(i.instanceId) !== undefined
            ? { standalone: this.#o.launcher.host.isMaterialized(i.instanceId) }
            : {}),
        };
      }),
      ...(body.lifecycle?.cutover ? { cutover: body.lifecycle.cutover } : {}),
      ...(this.#streaming.has(app.appId)
        ? { streaming: streamingView(this.#streaming.get(app.appId)!) }
        : {}),
      history: body.lifecycle?.history ?? [],
    };
  }

  /** Launches test instances; the app is TEST_IN_PROGRESS until revert or ready-for-cutover. */
  async startTest(input: { appId: string }): Promise<{ state: LifecycleState }> {
    const launcher = this.#launcher();
    await this.#refuseBusy(input.appId);
    await this.#move(input.appId, 'TEST_IN_PROGRESS', 'Launching test instances.', 'StartTest');
    try {
      await launcher.launchApp(input.appId, 'test');
    } catch (err) {
      await this.#move(input.appId, 'READY_FOR_TESTING', `Test not started: ${toFerryError(err).message}`);
      throw err;
    }
    this.#background(input.appId, async () => {
      const settled = await launcher.settled(input.appId);
      if (settled?.status === 'LAUNCHED') {
        await this.#move(
          input.appId,
          'TEST_IN_PROGRESS',
          `Test instances running: ${settled.instanceIds.join(', ')}.`,
        );
        return;
      }
      await this.#terminate(input.appId);
      await this.#move(
        input.appId,
        'READY_FOR_TESTING',
        `Test launch failed: ${settled?.message ?? 'no launch state'}`,
      );
    });
    return { state: 'TEST_IN_PROGRESS' };
  }

  /** Ends testing: the test instances are terminated, the app waits for its cutover. */
  async markReadyForCutover(input: { appId: string }): Promise<{ state: LifecycleState }> {
    await this.#refuseBusy(input.appId);
    await this.#check(input.appId, 'MarkReadyForCutover');
    await this.#terminate(input.appId);
    await this.#move(
      input.appId,
      'READY_FOR_CUTOVER',
      'Tested; test instances terminated. Ready for cutover.',
      'MarkReadyForCutover',
    );
    return { state: 'READY_FOR_CUTOVER' };
  }

  async revertToReadyForTesting(input: { appId: string }): Promise<{ state: LifecycleState }> {
    await this.#refuseBusy(input.appId);
    await this.#check(input.appId, 'RevertToReadyForTesting');
    await this.#terminate(input.appId);
    await this.#move(
      input.appId,
      'READY_FOR_TESTING',
      'Reverted to ready for testing; test instances terminated.',
      'RevertToReadyForTesting',
    );
    return { state: 'READY_FOR_TESTING' };
  }

  /**
   * The cutover: a final replication run of every server (unless `finalReplication` is
   * false), then the cutover launch from the images it made. Refusals (no launch host, a
   * server without a replication job) come at once; the rest runs in the background.
   */
  async startCutover(input: {
    appId: string;
    finalReplication?: boolean;
  }): Promise<{ state: LifecycleState }> {
    const launcher = this.#launcher();
    const r = repositories(this.#o.db);
    await this.#refuseBusy(input.appId);
    const app = await requireApp(r, input.appId);
    if (!app.launchConfig) {
      throw new OperationNotPermittedError(
        `application ${app.appId} has no launch configuration; call PutAppLaunchConfiguration first`,
      );
    }
    const launched = (await r.instances.forApp(app.appId)).filter((i) => i.state !== 'terminated');
    if (launched.length > 0) {
      throw new OperationNotPermittedError(
        `application ${app.appId} has running instances (${launched.map((i) => i.instanceId).join(', ')}); terminate them first`,
      );
    }
    const final = input.finalReplication ?? true;
    const serverIds = (app.body as AppBody).serverGroups.flatMap((g) => g.serverIds);
    const jobs = final ? await liveJobs(this.#o.db, serverIds) : new Map<string, string>();
    const startedAt = this.#o.clock.now();
    const t0 = Date.now();
    await this.#move(
      app.appId,
      'CUTOVER_IN_PROGRESS',
      final ? 'Final replication starting.' : 'Launching cutover instances.',
      'StartCutover',
      { startedAt },
    );
    this.#background(app.appId, async () => {
      try {
        if (final) {
          await finalReplication(
            {
              db: this.#o.db,
              jobs: this.#o.jobs,
              pollMs: this.#o.pollMs ?? 1000,
              timeoutMs: this.#o.finalReplicationTimeoutMs ?? 4 * 3600_000,
              signal: this.#stop.signal,
            },
            jobs,
            (text) => this.#move(app.appId, 'CUTOVER_IN_PROGRESS', text).then(() => undefined),
          );
        }
        const t1 = Date.now();
        await this.#move(app.appId, 'CUTOVER_IN_PROGRESS', 'Launching cutover instances.');
        await launcher.launchApp(app.appId, 'cutover');
        const settled = await launcher.settled(app.appId);
        if (settled?.status !== 'LAUNCHED') {
          throw new LifecycleFailedError(`cutover launch failed: ${settled?.message ?? 'no launch state'}`);
        }
        const t2 = Date.now();
        const cutover = {
          startedAt,
          ...(final ? { finalReplicationMs: t1 - t0 } : {}),
          launchMs: t2 - t1,
          totalMs: t2 - t0,
        };
        this.#afterCutover(app.appId, launcher);
        await this.#move(
          app.appId,
          'CUTOVER_COMPLETE',
          `Cutover complete in ${seconds(t2 - t0)} s` +
            (final ? ` (final replication ${seconds(t1 - t0)} s, launch ${seconds(t2 - t1)} s)` : '') +
            `: instances ${settled.instanceIds.join(', ')}.`,
          undefined,
          cutover,
        );
      } catch (err) {
        await this.#terminate(app.appId).catch(() => undefined);
        await this.#move(app.appId, 'READY_FOR_CUTOVER', `Cutover failed: ${toFerryError(err).message}`);
      }
    });
    return { state: 'CUTOVER_IN_PROGRESS' };
  }

  /**
   * After the cutover launch: stream the images into the cutover instances so they stand
   * alone (the store may prune the images, the server may restart). Finalize waits for it.
   */
  #afterCutover(appId: string, launcher: LaunchService): void {
    const state = { fraction: 0, error: undefined as string | undefined, done: false };
    this.#streaming.set(appId, state);
    void launcher.host
      .materializeApp(appId, (f) => (state.fraction = f))
      .then(
        () => (state.done = true),
        (err: unknown) => (state.error = toFerryError(err).message),
      );
  }

  /** Back from a completed cutover (the source still runs): cutover instances terminated. */
  async revertCutover(input: { appId: string }): Promise<{ state: LifecycleState }> {
    await this.#refuseBusy(input.appId);
    await this.#check(input.appId, 'RevertCutover');
    await this.#terminate(input.appId);
    this.#streaming.delete(input.appId);
    await this.#move(
      input.appId,
      'READY_FOR_CUTOVER',
      'Cutover reverted; cutover instances terminated.',
      'RevertCutover',
    );
    return { state: 'READY_FOR_CUTOVER' };
  }

  /** The migration is done: replication stops (its jobs are deleted; images stay). */
  async finalizeCutover(input: { appId: string }): Promise<{ state: LifecycleState }> {
    await this.#check(input.appId, 'FinalizeCutover');
    const streaming = this.#streaming.get(input.appId);
    if (streaming && !streaming.done) {
      throw new OperationNotPermittedError(
        streaming.error
          ? `the cutover instances could not take their data from the image (${streaming.error}); revert the cutover and cut over again`
          : `the cutover instances are still taking their data from the image (${Math.floor(streaming.fraction * 100)} %); finalize when done`,
      );
    }
    const r = repositories(this.#o.db);
    const app = await requireApp(r, input.appId);
    const live = (await r.instances.forApp(app.appId)).filter((i) => i.state !== 'terminated');
    if (live.length === 0 || live.some((i) => this.#o.launcher?.host.isMaterialized(i.instanceId) !== true)) {
      throw new OperationNotPermittedError(
        `application ${app.appId} has no standalone cutover instances to finalize (they ended before taking in their images, e.g. in a restart); revert the cutover and cut over again`,
      );
    }
    const stopped: string[] = [];
    for (const serverId of (app.body as AppBody).serverGroups.flatMap((g) => g.serverIds)) {
      for (const job of await r.jobs.forServer(serverId, [
        'PENDING',
        'ACTIVE',
        'FAILING',
        'PAUSED_ON_FAILURE',
      ])) {
        await this.#o.jobs.deleteReplicationJob({ replicationJobId: job.replicationJobId });
        stopped.push(job.replicationJobId);
      }
    }
    await this.#move(
      input.appId,
      'FINALIZED',
      `Finalized; replication stopped${stopped.length ? ` (jobs ${stopped.join(', ')} deleted)` : ''}.`,
      'FinalizeCutover',
    );
    return { state: 'FINALIZED' };
  }

  async archiveApp(input: { appId: string }): Promise<{ state: LifecycleState }> {
    await this.#move(input.appId, 'ARCHIVED', 'Archived.', 'ArchiveApp');
    return { state: 'ARCHIVED' };
  }

  async unarchiveApp(input: { appId: string }): Promise<{ state: LifecycleState }> {
    await this.#move(input.appId, 'NOT_READY', 'Unarchived.', 'UnarchiveApp');
    const r = repositories(this.#o.db);
    const app = await requireApp(r, input.appId);
    return { state: (await effectiveState(r, app.body as LifecycleBody)).state };
  }

  /** Resolves when the app's background action (test launch, cutover) has ended (tests). */
  async settled(appId: string): Promise<void> {
    await this.#work.get(appId);
  }

  /**
   * After a restart: a cutover that was in flight did not finish (its launch died with the
   * process that ran it), so it goes back to READY_FOR_CUTOVER and says so.
   */
  async recover(): Promise<void> {
    const r = repositories(this.#o.db);
    let after;
    do {
      const page = await r.apps.page({ after, limit: 500 });
      for (const app of page.items) {
        const body = app.body as LifecycleBody;
        if (body.lifecycle?.state !== 'CUTOVER_IN_PROGRESS' || this.#work.has(app.appId)) continue;
        await this.#move(
          app.appId,
          'READY_FOR_CUTOVER',
          'Cutover interrupted: the server restarted during it. Start the cutover again.',
        );
      }
      after = page.next;
    } while (after);
  }

  /** Aborts the background actions (a server shutting down) and waits for them. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.allSettled([...this.#work.values()]);
  }

  #launcher(): LaunchService {
    if (!this.#o.launcher) {
      throw new OperationNotPermittedError(
        'this server is not a launch host (it has no image store or instance directory)',
      );
    }
    return this.#o.launcher;
  }

  async #refuseBusy(appId: string): Promise<void> {
    if (this.#work.has(appId)) {
      throw new OperationNotPermittedError(`application ${appId} has a test launch or cutover in progress`);
    }
    const app = await requireApp(repositories(this.#o.db), appId);
    const status = (app.body as AppBody).launch?.status;
    if (status && BUSY_LAUNCH.has(status)) {
      throw new OperationNotPermittedError(`application ${appId} is ${status}; wait for it to finish`);
    }
  }

  /** Refuses an action the current state does not allow, before any side effect. */
  async #check(appId: string, action: LifecycleAction): Promise<void> {
    const r = repositories(this.#o.db);
    const { state } = await effectiveState(r, (await requireApp(r, appId)).body as LifecycleBody);
    if (!ACTION_FROM[action].includes(state)) {
      throw new LifecycleTransitionError(
        `application ${appId} is ${state}; ${action} needs ${ACTION_FROM[action].join(' or ')}`,
        { appId, state, action },
      );
    }
  }

  async #move(
    appId: string,
    to: LifecycleState,
    message: string,
    action?: LifecycleAction,
    cutover?: { startedAt: number },
  ): Promise<void> {
    await this.#o.db.transaction((tx) =>
      move(repositories(tx), appId, this.#o.clock.now(), to, message, {
        ...(action ? { action } : {}),
        ...(cutover ? { cutover } : {}),
      }),
    );
  }

  /** Terminates the app's live instances (of any launch), if it has some. */
  async #terminate(appId: string): Promise<void> {
    const live = (await repositories(this.#o.db).instances.forApp(appId)).filter(
      (i) => i.state !== 'terminated',
    );
    if (live.length > 0 && this.#o.launcher) await this.#o.launcher.terminateApp(appId);
  }

  #background(appId: string, task: () => Promise<void>): void {
    const work = task()
      .catch(() => undefined)
      .finally(() => {
        if (this.#work.get(appId) === work) this.#work.delete(appId);
      });
    this.#work.set(appId, work);
  }
}

function streamingView(s: { fraction: number; error: string | undefined; done: boolean }) {
  return {
    percentDone: s.done ? 100 : Math.floor(s.fraction * 100),
    done: s.done,
    ...(s.error ? { error: s.error } : {}),
  };
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}
