/**
 * Replication jobs and their runs, as the SMS operations see them. Scheduling and
 * execution live in scheduler.ts and executor.ts; this file owns creation, updates,
 * deletion, on-demand runs and the listings.
 */
import type { ServerFacts } from '../connectors/index.js';
import {
  repositories,
  type Database,
  type JobRecord,
  type Repositories,
  type RunRecord,
} from '../db/index.js';
import {
  InvalidArgumentError,
  JobExistsError,
  JobNotFoundError,
  NotFoundError,
  OperationNotPermittedError,
  ParameterMissingError,
  RunLimitExceededError,
  ServerNotReplicableError,
} from '../errors/index.js';
import type { Clock } from './clock.js';
import type { ConnectorService } from './connectors.js';
import { newId } from './ids.js';
import { decodeToken, encodeToken, pageSize } from './paging.js';
import {
  LISTED_JOB_STATES,
  LIVE_JOB_STATES,
  OPEN_RUN_STATES,
  isJobState,
  jobStatesBefore,
  type JobState,
  type RunType,
} from './states.js';
import { jobView, runView, type JobServerSnapshot } from './views.js';

export interface JobPolicy {
  /** 'hours' as on SMS; 'minutes' for tests and demos (`ferry server --frequency-unit minutes`). */
  readonly frequencyUnit: 'hours' | 'minutes';
  /** On-demand runs allowed per job in any 24 hours. */
  readonly onDemandRunsPerDay: number;
}

export const DEFAULT_JOB_POLICY: JobPolicy = { frequencyUnit: 'hours', onDemandRunsPerDay: 2 };
/** SMS allowed 1–24 hours between runs; in minutes mode, up to a day as well. */
export const MAX_FREQUENCY = { hours: 24, minutes: 24 * 60 } as const;
/** A seed time further ahead than this is a mistake (SMS's console offered 30 days). */
export const MAX_SEED_AHEAD_MS = 30 * 24 * 3600_000;
/** Runs embedded in each job of GetReplicationJobs (the most recent ones). */
export const RUNS_EMBEDDED_PER_JOB = 10;
const DAY_MS = 24 * 3600_000;

export interface CreateJobInput {
  serverId: string;
  seedReplicationTime: number;
  frequency?: number;
  runOnce?: boolean;
  licenseType?: string;
  roleName?: string;
  description?: string;
  numberOfRecentAmisToKeep?: number;
  encrypted?: boolean;
  kmsKeyId?: string;
}

export interface UpdateJobInput {
  replicationJobId: string;
  frequency?: number;
  nextReplicationRunStartTime?: number;
  licenseType?: string;
  roleName?: string;
  description?: string;
  numberOfRecentAmisToKeep?: number;
  encrypted?: boolean;
  kmsKeyId?: string;
}

export class JobService {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #connectors: ConnectorService;
  readonly policy: JobPolicy;
  /** Called after a change that may make work due now (the scheduler wakes up). */
  onChange: () => void = () => undefined;

  readonly #keySlots: (() => Promise<readonly string[]>) | undefined;

  /**
   * `keySlots` lists the image store's key slots: a job's `kmsKeyId` must name one (the
   * store key its images can be opened with; docs/api-compatibility.md).
   */
  constructor(
    db: Database,
    clock: Clock,
    connectors: ConnectorService,
    policy: JobPolicy = DEFAULT_JOB_POLICY,
    keySlots?: () => Promise<readonly string[]>,
  ) {
    this.#db = db;
    this.#clock = clock;
    this.#connectors = connectors;
    this.policy = policy;
    this.#keySlots = keySlots;
  }

  /** SMS's KMS key of a job's AMIs ↔ a key slot of the image store. */
  async #checkKmsKeyId(kmsKeyId: string | undefined): Promise<void> {
    if (!kmsKeyId || !this.#keySlots) return;
    const slots = await this.#keySlots();
    if (!slots.includes(kmsKeyId)) {
      throw new InvalidArgumentError(
        `kmsKeyId ${kmsKeyId} is not a key slot of this server's image store (\`ferry store key list --data-dir DIR\` lists them)`,
        { member: 'kmsKeyId' },
      );
    }
  }

  frequencyMs(frequency: number): number {
    return frequency * (this.policy.frequencyUnit === 'hours' ? 3600_000 : 60_000);
  }

  checkFrequency(frequency: number | undefined, member = 'frequency'): void {
    const max = MAX_FREQUENCY[this.policy.frequencyUnit];
    if (frequency !== undefined && (frequency < 1 || frequency > max)) {
      throw new InvalidArgumentError(`${member} must be between 1 and ${max} ${this.policy.frequencyUnit}`, {
        member,
        value: frequency,
      });
    }
  }

  async createReplicationJob(input: CreateJobInput, appId?: string): Promise<{ replicationJobId: string }> {
    const runOnce = input.runOnce ?? false;
    if (!runOnce && input.frequency === undefined) {
      throw new ParameterMissingError('frequency is required unless runOnce is true', {
        member: 'frequency',
      });
    }
    this.checkFrequency(input.frequency);
    const now = this.#clock.now();
    if (input.seedReplicationTime > now + MAX_SEED_AHEAD_MS) {
      throw new InvalidArgumentError('seedReplicationTime is more than 30 days ahead', {
        member: 'seedReplicationTime',
      });
    }
    if (input.kmsKeyId && !input.encrypted) {
      throw new InvalidArgumentError('kmsKeyId needs encrypted: true', { member: 'kmsKeyId' });
    }
    await this.#checkKmsKeyId(input.kmsKeyId);
    // The server's connector must be usable now: a job for an unreachable source would only fail.
    const pre = await repositories(this.#db).servers.get(input.serverId);
    if (pre) await this.#connectors.require(pre.connectorId);
    const replicationJobId = newId.job();
    await this.#db.transaction(async (tx) => {
      const r = repositories(tx);
      const server = await r.servers.get(input.serverId);
      if (!server) {
        throw new NotFoundError(`no server ${input.serverId} in the catalog (run ImportServerCatalog)`, {
          resource: 'server',
          serverId: input.serverId,
        });
      }
      const facts = server.facts as ServerFacts;
      if (facts.disks.length === 0) {
        throw new ServerNotReplicableError(`server ${input.serverId} has no disks Ferry can read`, {
          serverId: input.serverId,
        });
      }
      const existing = await r.jobs.forServer(input.serverId, LIVE_JOB_STATES);
      if (existing.length > 0) {
        throw new JobExistsError(
          `server ${input.serverId} already has replication job ${existing[0]?.replicationJobId}`,
          { serverId: input.serverId, replicationJobId: existing[0]?.replicationJobId },
        );
      }
      const snapshot: JobServerSnapshot = {
        serverId: server.serverId,
        connectorId: server.connectorId,
        vmManagerId: server.vmManagerId,
        vmId: server.vmId,
        vmName: server.vmName,
        vmManagerName: server.vmManagerName,
        vmManagerType: server.vmManagerType,
        vmPath: server.vmPath,
        facts,
      };
      await r.jobs.insert({
        replicationJobId,
        serverId: server.serverId,
        server: snapshot,
        seedReplicationTime: input.seedReplicationTime,
        frequency: runOnce ? (input.frequency ?? null) : (input.frequency as number),
        runOnce,
        nextRunAt: input.seedReplicationTime,
        licenseType: input.licenseType ?? null,
        roleName: input.roleName ?? null,
        description: input.description ?? null,
        numberOfRecentAmisToKeep: input.numberOfRecentAmisToKeep ?? 0,
        encrypted: input.encrypted ?? false,
        kmsKeyId: input.kmsKeyId ?? null,
        latestAmiId: null,
        state: 'PENDING',
        statusMessage: `Waiting for the first run at ${new Date(Math.max(input.seedReplicationTime, now)).toISOString()}.`,
        consecutiveFailures: 0,
        appId: appId ?? null,
        createdAt: now,
        updatedAt: now,
      });
      await r.servers.update(server.serverId, { replicationJobId, replicationJobTerminated: false });
    });
    this.onChange();
    return { replicationJobId };
  }

  async getReplicationJobs(input: { replicationJobId?: string; nextToken?: string; maxResults?: number }) {
    const r = repositories(this.#db);
    if (input.replicationJobId !== undefined) {
      const j = await r.jobs.get(input.replicationJobId);
      if (!j || j.state === 'DELETED') {
        throw new JobNotFoundError(`no replication job ${input.replicationJobId}`, {
          replicationJobId: input.replicationJobId,
        });
      }
      return { replicationJobList: [jobView(j, await recentRuns(r, j.replicationJobId))] };
    }
    const page = await r.jobs.page(
      { after: decodeToken('jobs', input.nextToken), limit: pageSize(input.maxResults) },
      LISTED_JOB_STATES,
    );
    const list = [];
    for (const j of page.items) list.push(jobView(j, await recentRuns(r, j.replicationJobId)));
    return { replicationJobList: list, nextToken: encodeToken('jobs', page.next) };
  }

  async updateReplicationJob(input: UpdateJobInput): Promise<Record<string, never>> {
    this.checkFrequency(input.frequency);
    const job = await this.#job(input.replicationJobId);
    if (job.state === 'DELETING') throw beingDeleted(job.replicationJobId);
    if (input.kmsKeyId && input.encrypted === false) {
      throw new InvalidArgumentError('kmsKeyId needs encrypted: true', { member: 'kmsKeyId' });
    }
    await this.#checkKmsKeyId(input.kmsKeyId);
    const now = this.#clock.now();
    const patch: { -readonly [K in keyof JobRecord]?: JobRecord[K] } = { updatedAt: now };
    if (input.frequency !== undefined) {
      patch.frequency = input.frequency;
      if (job.runOnce) patch.runOnce = false;
    }
    if (input.nextReplicationRunStartTime !== undefined) {
      if (input.nextReplicationRunStartTime > now + MAX_SEED_AHEAD_MS) {
        throw new InvalidArgumentError('nextReplicationRunStartTime is more than 30 days ahead', {
          member: 'nextReplicationRunStartTime',
        });
      }
      patch.nextRunAt = input.nextReplicationRunStartTime;
    }
    if (input.licenseType !== undefined) patch.licenseType = input.licenseType;
    if (input.roleName !== undefined) patch.roleName = input.roleName;
    if (input.description !== undefined) patch.description = input.description;
    if (input.numberOfRecentAmisToKeep !== undefined)
      patch.numberOfRecentAmisToKeep = input.numberOfRecentAmisToKeep;
    if (input.encrypted !== undefined) patch.encrypted = input.encrypted;
    if (input.kmsKeyId !== undefined) patch.kmsKeyId = input.kmsKeyId;
    await repositories(this.#db).jobs.update(job.replicationJobId, patch);
    this.onChange();
    return {};
  }

  async deleteReplicationJob(input: { replicationJobId: string }): Promise<Record<string, never>> {
    await this.#db.transaction(async (tx) => {
      const r = repositories(tx);
      const job = await r.jobs.get(input.replicationJobId);
      if (!job || job.state === 'DELETED') throw notFound(input.replicationJobId);
      if (job.state === 'DELETING') throw beingDeleted(job.replicationJobId);
      const now = this.#clock.now();
      const active = await r.runs.forJob(job.replicationJobId, ['ACTIVE']);
      for (const run of await r.runs.forJob(job.replicationJobId, ['PENDING'])) {
        await r.runs.update(run.replicationRunId, {
          state: 'DELETED',
          statusMessage: 'The job was deleted before this run started.',
          completedTime: now,
        });
      }
      // An active run is stopped by its worker, which then finishes the deletion.
      const to: JobState = active.length > 0 ? 'DELETING' : 'DELETED';
      await r.jobs.update(
        job.replicationJobId,
        {
          state: to,
          statusMessage: to === 'DELETING' ? 'Stopping the active run, then deleting.' : 'Deleted.',
          nextRunAt: null,
          updatedAt: now,
        },
        { field: 'state', in: jobStatesBefore(to) },
      );
      await markServerTerminated(r, job);
    });
    this.onChange();
    return {};
  }

  /**
   * `o.finalRun`: the lifecycle's final run before a cutover, which the daily on-demand
   * quota must not block (the quota protects sources from scripted run storms, not from
   * the one run that moves a server).
   */
  async startOnDemandReplicationRun(
    input: { replicationJobId: string; description?: string },
    o: { finalRun?: boolean } = {},
  ) {
    const replicationRunId = await this.#db.transaction(async (tx) => {
      const r = repositories(tx);
      const job = await r.jobs.get(input.replicationJobId);
      if (!job || job.state === 'DELETED') throw notFound(input.replicationJobId);
      if (job.state === 'DELETING') throw beingDeleted(job.replicationJobId);
      const open = await r.runs.forJob(job.replicationJobId, OPEN_RUN_STATES);
      if (open.length > 0) {
        throw new OperationNotPermittedError(
          `replication job ${job.replicationJobId} already has run ${open[0]?.replicationRunId} ${open[0]?.state}; wait for it to finish`,
        );
      }
      const now = this.#clock.now();
      const used = await r.runs.countSince(job.replicationJobId, 'ON_DEMAND', now - DAY_MS);
      if (!o.finalRun && used >= this.policy.onDemandRunsPerDay) {
        throw new RunLimitExceededError(
          `replication job ${job.replicationJobId} has had ${used} on-demand runs in the last 24 hours (limit ${this.policy.onDemandRunsPerDay})`,
          { limit: this.policy.onDemandRunsPerDay },
        );
      }
      return insertRun(r, job, 'ON_DEMAND', now, now, input.description);
    });
    this.onChange();
    return { replicationRunId };
  }

  async getReplicationRuns(input: { replicationJobId: string; nextToken?: string; maxResults?: number }) {
    const r = repositories(this.#db);
    const job = await r.jobs.get(input.replicationJobId);
    if (!job || job.state === 'DELETED') throw notFound(input.replicationJobId);
    const page = await r.runs.pageForJob(job.replicationJobId, {
      after: decodeToken(`runs:${job.replicationJobId}`, input.nextToken),
      limit: pageSize(input.maxResults),
    });
    return {
      replicationJob: jobView(job),
      replicationRunList: page.items.map(runView),
      nextToken: encodeToken(`runs:${job.replicationJobId}`, page.next),
    };
  }

  async jobsOfApp(appId: string): Promise<JobRecord[]> {
    return repositories(this.#db).jobs.forApp(appId, LIVE_JOB_STATES);
  }

  async countByState(): Promise<Record<string, number>> {
    return repositories(this.#db).jobs.countByState();
  }

  async #job(id: string): Promise<JobRecord & { server: JobServerSnapshot }> {
    const job = await repositories(this.#db).jobs.get(id);
    if (!job || job.state === 'DELETED' || !isJobState(job.state)) throw notFound(id);
    return job as JobRecord & { server: JobServerSnapshot };
  }
}

/** A job being deleted takes no more changes: for them it is already gone. */
function beingDeleted(id: string): Error {
  return new JobNotFoundError(`replication job ${id} is being deleted`, { replicationJobId: id });
}

function notFound(id: string): Error {
  return new JobNotFoundError(`no replication job ${id}`, { replicationJobId: id });
}

async function recentRuns(r: Repositories, jobId: string): Promise<RunRecord[]> {
  const all = await r.runs.forJob(jobId, ['PENDING', 'ACTIVE', 'COMPLETED', 'FAILED', 'MISSED']);
  return all.slice(-RUNS_EMBEDDED_PER_JOB);
}

export async function markServerTerminated(r: Repositories, job: JobRecord): Promise<void> {
  const server = await r.servers.get(job.serverId);
  if (server?.replicationJobId === job.replicationJobId) {
    await r.servers.update(job.serverId, { replicationJobTerminated: true });
  }
}

/** Creates a PENDING run of `job`; returns its id. */
export async function insertRun(
  r: Repositories,
  job: JobRecord,
  type: RunType,
  scheduledStartTime: number,
  now: number,
  description?: string,
): Promise<string> {
  const replicationRunId = newId.run();
  await r.runs.insert({
    replicationRunId,
    replicationJobId: job.replicationJobId,
    type,
    state: 'PENDING',
    statusMessage:
      type === 'ON_DEMAND' ? 'On-demand run waiting for a worker.' : 'Scheduled run waiting for a worker.',
    stage: null,
    stageProgress: null,
    amiId: null,
    scheduledStartTime,
    startedAt: null,
    completedTime: null,
    description: description ?? null,
    encrypted: job.encrypted,
    kmsKeyId: job.kmsKeyId,
    step: null,
    checkpoint: {},
    progress: null,
    leaseOwner: null,
    leaseUntil: null,
    attempts: 0,
    createdAt: now,
  });
  return replicationRunId;
}
