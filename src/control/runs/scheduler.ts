/**
 * The scheduler: turns due jobs into runs and hands runs to the executor. It ticks every
 * TICK_MS and whenever the job service reports a change (a new job whose seed time has
 * passed starts its first run at once, not at the next tick).
 *
 * A job is due when `nextReplicationRunStartTime` has passed. Its run is AUTOMATIC; the
 * next time moves on by `frequency` (skipping windows that passed while the server was
 * down: one catch-up run, not a storm). If the job's previous run is still going, the
 * scheduled run is recorded as MISSED, as SMS did.
 */
import { repositories, type Database, type JobRecord } from '../../db/index.js';
import type { Clock } from '../clock.js';
import { insertRun, type JobService } from '../jobs.js';
import { newId } from '../ids.js';
import { OPEN_RUN_STATES, SCHEDULABLE_JOB_STATES } from '../states.js';
import { loggable, type ExecutorLog, type RunExecutor } from './executor.js';

export const TICK_MS = 1000;
/** Jobs made due per tick (the rest are due on the next). */
const DUE_BATCH = 100;

export class Scheduler {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #jobs: JobService;
  readonly #executor: RunExecutor;
  readonly #log: ExecutorLog | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;

  constructor(db: Database, clock: Clock, jobs: JobService, executor: RunExecutor, log?: ExecutorLog) {
    this.#db = db;
    this.#clock = clock;
    this.#jobs = jobs;
    this.#executor = executor;
    this.#log = log;
  }

  start(): void {
    this.#jobs.onChange = () => this.wake();
    this.#timer = setInterval(() => this.wake(), TICK_MS);
    this.#timer.unref();
    this.wake();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#jobs.onChange = () => undefined;
    await this.#running?.catch(() => undefined);
    await this.#executor.stop();
  }

  /** Resolves when no tick is in progress. */
  async settled(): Promise<void> {
    while (this.#running) await this.#running.catch(() => undefined);
  }

  /** Runs a tick now (or right after the one in progress). */
  wake(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.tick()
      .catch((err: unknown) => this.#log?.warn({ err: loggable(err) }, 'scheduler tick failed'))
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.wake();
        }
      });
  }

  async tick(): Promise<void> {
    const now = this.#clock.now();
    for (const job of await repositories(this.#db).jobs.due(now, SCHEDULABLE_JOB_STATES, DUE_BATCH)) {
      await this.#schedule(job.replicationJobId, now);
    }
    await this.#executor.poll();
  }

  async #schedule(jobId: string, now: number): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const r = repositories(tx);
      const job = await r.jobs.get(jobId);
      if (!job || job.nextRunAt === null || job.nextRunAt > now) return;
      if (!(SCHEDULABLE_JOB_STATES as readonly string[]).includes(job.state)) return;
      const busy = (await r.runs.forJob(jobId, OPEN_RUN_STATES)).length > 0;
      if (busy) {
        await r.runs.insert({
          ...missedRun(job, now),
        });
      } else {
        await insertRun(r, job, 'AUTOMATIC', job.nextRunAt, now);
      }
      await r.jobs.update(jobId, { nextRunAt: this.#next(job, now), updatedAt: now });
    });
  }

  #next(job: JobRecord, now: number): number | null {
    if (job.runOnce || job.frequency === null || job.nextRunAt === null) return null;
    const step = this.#jobs.frequencyMs(job.frequency);
    const behind = Math.max(0, Math.floor((now - job.nextRunAt) / step));
    return job.nextRunAt + (behind + 1) * step;
  }
}

function missedRun(job: JobRecord, now: number) {
  return {
    replicationRunId: newId.run(),
    replicationJobId: job.replicationJobId,
    type: 'AUTOMATIC',
    state: 'MISSED',
    statusMessage: 'Skipped: the previous run of this job was still in progress at the scheduled time.',
    stage: null,
    stageProgress: null,
    amiId: null,
    scheduledStartTime: job.nextRunAt ?? now,
    startedAt: null,
    completedTime: now,
    description: null,
    encrypted: job.encrypted,
    kmsKeyId: job.kmsKeyId,
    step: null,
    checkpoint: {},
    progress: null,
    leaseOwner: null,
    leaseUntil: null,
    attempts: 0,
    createdAt: now,
  };
}
