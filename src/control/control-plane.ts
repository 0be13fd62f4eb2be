/**
 * The control plane: every domain service over one database, wired once. The API binds
 * SMS operations to these services; the CLI uses the same services locally (keys).
 */
import type { Database } from '../db/index.js';
import { AppLaunchService } from './app-launch.js';
import { AppReplicationService } from './app-replication.js';
import { AppValidationService } from './app-validation.js';
import { AppService } from './apps.js';
import { CatalogService, type CatalogLog } from './catalog.js';
import { systemClock, type Clock } from './clock.js';
import { ConnectorService } from './connectors.js';
import { DEFAULT_JOB_POLICY, JobService, type JobPolicy } from './jobs.js';
import { KeyService } from './keys.js';

export interface ControlPlaneOptions {
  readonly db: Database;
  /** 32 bytes from the data directory (secrets at rest). */
  readonly masterKey: Buffer;
  readonly clock?: Clock;
  readonly jobPolicy?: Partial<JobPolicy>;
  readonly log?: CatalogLog;
}

export class ControlPlane {
  readonly db: Database;
  readonly clock: Clock;
  readonly keys: KeyService;
  readonly connectors: ConnectorService;
  readonly catalog: CatalogService;
  readonly jobs: JobService;
  readonly apps: AppService;
  readonly appReplication: AppReplicationService;
  readonly appLaunch: AppLaunchService;
  readonly appValidation: AppValidationService;

  constructor(o: ControlPlaneOptions) {
    this.db = o.db;
    this.clock = o.clock ?? systemClock;
    this.keys = new KeyService(o.db, o.masterKey, this.clock);
    this.connectors = new ConnectorService(o.db, this.clock);
    this.catalog = new CatalogService(o.db, this.clock, this.connectors, o.log);
    this.jobs = new JobService(o.db, this.clock, this.connectors, { ...DEFAULT_JOB_POLICY, ...o.jobPolicy });
    this.apps = new AppService(o.db, this.clock);
    this.appReplication = new AppReplicationService(o.db, this.clock, this.jobs);
    this.appLaunch = new AppLaunchService(o.db, this.clock);
    this.appValidation = new AppValidationService(o.db, this.clock);
  }

  /** Deletes an app, first deleting its jobs when asked (DeleteApp forceStopAppReplication). */
  async deleteApp(input: { appId: string; forceStopAppReplication?: boolean; forceTerminateApp?: boolean }) {
    await this.apps.getApp({ appId: input.appId });
    if (input.forceStopAppReplication) await this.appReplication.stopAppReplication({ appId: input.appId });
    return this.apps.deleteApp({ appId: input.appId });
  }

  /** Resolves when the database answers (for /healthz). */
  async ping(): Promise<void> {
    await this.db.get('SELECT 1 AS ok');
  }
}
