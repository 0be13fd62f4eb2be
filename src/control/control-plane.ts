/**
 * The control plane: every domain service over one database, wired once. The API binds
 * SMS operations to these services; the CLI uses the same services locally (keys).
 */
import { observeChanges, repositories, type Database } from '../db/index.js';
import { InvalidArgumentError, OperationNotPermittedError } from '../errors/index.js';
import { AppLaunchService } from './app-launch.js';
import { AppReplicationService } from './app-replication.js';
import { AppValidationService } from './app-validation.js';
import { AppService } from './apps.js';
import { CatalogService, type CatalogLog } from './catalog.js';
import { systemClock, type Clock } from './clock.js';
import { ConnectorService } from './connectors.js';
import { EnrolmentService } from './enrolment.js';
import { EventLog, WebhookDispatcher, WebhookService, type DispatcherOptions } from './events/index.js';
import { DEFAULT_JOB_POLICY, JobService, type JobPolicy } from './jobs.js';
import { InstanceQueries } from './instances.js';
import { LaunchOptionsService } from './launch-options.js';
import { LocalObjects } from './objects.js';
import { ChecksService } from './validation/checks.js';
import { LaunchValidator } from './validation/run.js';
import { LifecycleService } from './lifecycle/service.js';
import { Waves, type WaveOutcome } from './lifecycle/waves.js';
import { LaunchService } from './launches.js';
import { HostService } from './hosts/service.js';
import { KeyService } from './keys.js';
import { RunExecutor, type ExecutorLog } from './runs/executor.js';
import { Scheduler } from './runs/scheduler.js';
import type { Repository } from '../store/index.js';

export interface ControlPlaneOptions {
  readonly db: Database;
  /** 32 bytes from the data directory (secrets at rest). */
  readonly masterKey: Buffer;
  readonly clock?: Clock;
  readonly jobPolicy?: Partial<JobPolicy>;
  readonly log?: CatalogLog & ExecutorLog;
  /** Where run images go; without one, runs fail with a clear message. */
  readonly store?: Repository;
  /**
   * Where this machine keeps launched instances (DATA_DIR/instances). With a store, it
   * makes the server a launch host: LaunchApp boots images here; without, LaunchApp is refused.
   */
  readonly instancesDir?: string;
  /** Where the local bucket keeps user data and scripts (DATA_DIR/objects). */
  readonly objectsDir?: string;
  /** Webhook delivery timing and event retention (tests retry faster). */
  readonly webhooks?: DispatcherOptions;
  /** Lifecycle timing (tests poll faster). */
  readonly lifecycle?: { readonly pollMs?: number; readonly finalReplicationTimeoutMs?: number };
}

export interface WorkerOptions {
  /** Runs executed at once by this process (default 2). */
  readonly concurrency?: number;
  /** No other process can hold run leases (embedded SQLite): orphaned runs resume at once. */
  readonly soleWorker?: boolean;
}

export class ControlPlane {
  /** The database, decorated so that state changes become events (events/log.ts). */
  readonly db: Database;
  readonly events: EventLog;
  readonly webhooks: WebhookService;
  readonly clock: Clock;
  readonly keys: KeyService;
  readonly connectors: ConnectorService;
  /** Enrolment tokens and certificates of remote connectors. */
  readonly enrolment: EnrolmentService;
  readonly catalog: CatalogService;
  readonly jobs: JobService;
  readonly apps: AppService;
  readonly appReplication: AppReplicationService;
  readonly appLaunch: AppLaunchService;
  readonly appValidation: AppValidationService;
  readonly instances: InstanceQueries;
  readonly launchOptions: LaunchOptionsService;
  readonly checks: ChecksService;
  /** The local bucket (`ferry-local`) of user data and configure scripts. */
  readonly objects: LocalObjects | undefined;
  readonly lifecycle: LifecycleService;
  readonly waves: Waves;
  readonly store: Repository | undefined;
  /** The launch host, when this process is one (instancesDir and a store). */
  readonly launches: LaunchService | undefined;
  /** Remote launch hosts (enrolled over the link; they read images from the store). */
  readonly hosts: HostService;
  readonly #log: (CatalogLog & ExecutorLog) | undefined;
  #scheduler: Scheduler | undefined;
  #executor: RunExecutor | undefined;
  #dispatcher: WebhookDispatcher | undefined;
  readonly #webhookOptions: DispatcherOptions | undefined;

  constructor(options: ControlPlaneOptions) {
    this.clock = options.clock ?? systemClock;
    this.events = new EventLog(this.clock);
    // Every service below writes through the decorated database, so none can change a
    // watched state without its event.
    const o = { ...options, db: observeChanges(options.db, this.events) };
    this.db = o.db;
    this.webhooks = new WebhookService(o.db, this.clock, o.masterKey, this.events);
    this.#webhookOptions = o.webhooks;
    this.store = o.store;
    this.#log = o.log;
    this.keys = new KeyService(o.db, o.masterKey, this.clock);
    this.connectors = new ConnectorService(o.db, this.clock);
    this.enrolment = new EnrolmentService(o.db, this.clock);
    this.catalog = new CatalogService(o.db, this.clock, this.connectors, o.log);
    const store = o.store;
    this.jobs = new JobService(
      o.db,
      this.clock,
      this.connectors,
      { ...DEFAULT_JOB_POLICY, ...o.jobPolicy },
      store ? async () => (await store.listSlots()).map((s) => s.id) : undefined,
    );
    this.apps = new AppService(o.db, this.clock);
    this.objects = o.objectsDir ? new LocalObjects(o.objectsDir) : undefined;
    this.appReplication = new AppReplicationService(o.db, this.clock, this.jobs);
    this.hosts = new HostService(o.db, this.clock, store);
    this.launches =
      store && o.instancesDir
        ? new LaunchService({
            hosts: this.hosts,
            db: o.db,
            clock: this.clock,
            store,
            instancesDir: o.instancesDir,
            ...(this.objects ? { objects: this.objects } : {}),
            validator: new LaunchValidator(o.db, this.clock, this.objects),
            ...(o.log ? { log: o.log } : {}),
          })
        : undefined;
    this.appLaunch = new AppLaunchService(o.db, this.clock, this.launches);
    this.appValidation = new AppValidationService(o.db, this.clock);
    this.instances = new InstanceQueries(o.db, this.launches);
    this.launchOptions = new LaunchOptionsService(o.db, this.clock);
    this.checks = new ChecksService(o.db, this.clock);
    this.lifecycle = new LifecycleService({
      db: o.db,
      clock: this.clock,
      jobs: this.jobs,
      launcher: this.launches,
      ...o.lifecycle,
    });
    this.waves = new Waves(o.db, this.clock);
  }

  /** Deletes an app, first deleting its jobs when asked (DeleteApp forceStopAppReplication). */
  async deleteApp(input: { appId: string; forceStopAppReplication?: boolean; forceTerminateApp?: boolean }) {
    await this.apps.getApp({ appId: input.appId });
    if (input.forceStopAppReplication) await this.appReplication.stopAppReplication({ appId: input.appId });
    if (input.forceTerminateApp && this.launches) {
      const launched = await repositories(this.db).instances.forApp(input.appId);
      if (launched.some((i) => i.state !== 'terminated')) await this.launches.terminateApp(input.appId);
    }
    return this.apps.deleteApp({ appId: input.appId });
  }

  /** The local bucket, or a refusal when this control plane has none. */
  bucket(): LocalObjects {
    if (!this.objects)
      throw new OperationNotPermittedError('this server has no local bucket (no data directory)');
    return this.objects;
  }

  launchHosts(): HostService {
    return this.hosts;
  }

  /** One lifecycle action on an app, or on every app of a wave (exactly one of the two). */
  async lifecycleAction(
    input: { appId?: string; waveName?: string },
    act: (appId: string) => Promise<{ state: string }>,
  ): Promise<{ state?: string; apps?: WaveOutcome[] }> {
    if ((input.appId === undefined) === (input.waveName === undefined)) {
      throw new InvalidArgumentError('give appId or waveName (exactly one)', { member: 'appId' });
    }
    if (input.appId !== undefined) return act(input.appId);
    return this.waves.each(input.waveName!, act);
  }

  /** Starts the scheduler and the run workers of this process. */
  startWorkers(o: WorkerOptions = {}): void {
    if (this.#scheduler) return;
    this.#executor = new RunExecutor({
      db: this.db,
      clock: this.clock,
      connectors: this.connectors,
      store: this.store,
      ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
      ...(o.soleWorker !== undefined ? { soleWorker: o.soleWorker } : {}),
      ...(this.#log ? { log: this.#log } : {}),
    });
    this.#scheduler = new Scheduler(this.db, this.clock, this.jobs, this.#executor, this.#log);
    this.#scheduler.start();
    this.#dispatcher = new WebhookDispatcher(
      this.db,
      this.clock,
      this.webhooks,
      this.events,
      this.#webhookOptions,
    );
    this.#dispatcher.start();
  }

  /** Stops scheduling; running runs stop at once and resume from their checkpoint next start. */
  async stopWorkers(): Promise<void> {
    await this.#scheduler?.stop();
    this.#scheduler = undefined;
    await this.#dispatcher?.stop();
    this.#dispatcher = undefined;
  }

  /** Runs one scheduler tick now and waits for the runs it started (tests). */
  async runDueWork(): Promise<void> {
    await this.#scheduler?.tick();
    await this.#scheduler?.settled();
    await this.#executor?.idle();
    await this.#dispatcher?.idle();
  }

  /** Resolves when the database answers (for /healthz). */
  async ping(): Promise<void> {
    await this.db.get('SELECT 1 AS ok');
  }
}
