/**
 * Runs replication runs: claims PENDING runs (a lease in the database fences out any
 * other worker), walks each through the itinerary persisting the checkpoint after every
 * step, renews its lease while it works, and takes over ACTIVE runs whose worker died.
 *
 * After `kill -9`, a run is never stuck ACTIVE: its lease expires (or, with the embedded
 * SQLite database, which only one server process can use, the next start takes it at
 * once) and the run resumes at its first unfinished step, or fails cleanly after
 * MAX_ATTEMPTS starts. A half-written image is never listed: the store commits an image
 * only when complete.
 */
import { randomBytes } from 'node:crypto';
import { repositories, type Database, type RunRecord } from '../../db/index.js';
import { AbortedError, InternalError, toFerryError } from '../../errors/index.js';
import type { Repository } from '../../store/index.js';
import type { Clock } from '../clock.js';
import type { ConnectorService } from '../connectors.js';
import { jobStatesBefore } from '../states.js';
import type { JobServerSnapshot, RunProgress } from '../views.js';
import type { Checkpoint, PreviousRun } from './itinerary.js';
import { imagesInUse } from '../images-in-use.js';
import { completeRun, deleteRunOfDeletedJob, failRun } from './outcome.js';
import { ITINERARY } from './steps/index.js';

/** A worker holds a run this long without renewing; renewed every third of it. */
export const LEASE_MS = 30_000;
/** A run started this many times (crashes included) without finishing fails. */
export const MAX_ATTEMPTS = 3;
/** Progress is written to the database at most this often per run. */
const PROGRESS_EVERY_MS = 1000;

type Claim = { readonly kind: 'start' | 'job-deleted' | 'give-up'; readonly run: RunRecord };

export interface ExecutorLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ExecutorOptions {
  readonly db: Database;
  readonly clock: Clock;
  readonly connectors: ConnectorService;
  readonly store: Repository | undefined;
  /** Runs executed at once by this process. */
  readonly concurrency?: number;
  /** True when no other process can hold leases (embedded SQLite): orphans resume at once. */
  readonly soleWorker?: boolean;
  readonly log?: ExecutorLog;
}

export class RunExecutor {
  readonly workerId = `w-${randomBytes(6).toString('hex')}`;
  readonly #o: ExecutorOptions;
  readonly #active = new Map<string, { abort: AbortController; done: Promise<void>; connectorId?: string }>();
  #stopped = false;

  constructor(o: ExecutorOptions) {
    this.#o = o;
  }

  get activeRuns(): number {
    return this.#active.size;
  }

  /** Claims due PENDING runs and orphaned ACTIVE ones, up to the free slots; starts them. */
  async poll(): Promise<void> {
    if (this.#stopped) return;
    const free = (this.#o.concurrency ?? 2) - this.#active.size;
    if (free <= 0) return;
    const now = this.#o.clock.now();
    const r = repositories(this.#o.db);
    const candidates = (await r.runs.inStates(['ACTIVE', 'PENDING'])).filter(
      (run) =>
        !this.#active.has(run.replicationRunId) &&
        (run.state === 'PENDING'
          ? run.scheduledStartTime <= now
          : this.#o.soleWorker
            ? run.leaseOwner !== this.workerId
            : (run.leaseUntil ?? 0) < now),
    );
    // Each candidate's connector is looked up once: for its cap, and kept with the run.
    const picked: { run: RunRecord; connectorId: string | undefined }[] = [];
    for (const run of candidates) {
      if (picked.length >= free) break;
      const connectorId = await this.#connectorOf(run);
      if (this.#atConnectorCap(connectorId, picked)) continue;
      picked.push({ run, connectorId });
    }
    for (const { run, connectorId } of picked) {
      const claim = await this.#claim(run, now);
      if (claim?.kind === 'start') this.#start(claim.run, connectorId);
      else if (claim?.kind === 'job-deleted') {
        await this.#releaseSource(claim.run, (claim.run.checkpoint ?? {}) as Checkpoint);
        await deleteRunOfDeletedJob(this.#o.db, run.replicationRunId, now);
      } else if (claim?.kind === 'give-up') {
        await this.#releaseSource(claim.run, (claim.run.checkpoint ?? {}) as Checkpoint);
        const err = new InternalError(
          `the run was interrupted ${claim.run.attempts} times (server stopped or crashed during it)`,
        );
        await failRun(this.#o.db, run.replicationRunId, this.workerId, err, now);
      }
    }
  }

  /**
   * Whether the run's connector already runs as many runs in this process as it allows
   * (`ferry connector --max-concurrent-runs`): the run waits PENDING for a slot.
   */
  #atConnectorCap(
    connectorId: string | undefined,
    picked: readonly { connectorId: string | undefined }[],
  ): boolean {
    const cap = connectorId ? this.#o.connectors.capOf(connectorId) : undefined;
    if (cap === undefined) return false;
    const busy = [...this.#active.values(), ...picked].filter((a) => a.connectorId === connectorId).length;
    return busy >= cap;
  }

  async #connectorOf(run: RunRecord): Promise<string | undefined> {
    const job = await repositories(this.#o.db).jobs.get(run.replicationJobId);
    return (job?.server as JobServerSnapshot | undefined)?.connectorId;
  }

  /** Aborts the runs of this process (they resume on the next start) and waits for them. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const a of this.#active.values()) a.abort.abort(new AbortedError('server shutting down'));
    await Promise.allSettled([...this.#active.values()].map((a) => a.done));
  }

  /** Resolves when every run this process started has finished (tests). */
  async idle(): Promise<void> {
    while (this.#active.size > 0) await Promise.allSettled([...this.#active.values()].map((a) => a.done));
  }

  /**
   * A run that will not complete gives its source snapshot back uncommitted, so the source
   * keeps tracking the changes for the next run. Best effort: the source may be gone (a
   * stopped VM); its next snapshot or sweep cleans up.
   */
  async #releaseSource(run: RunRecord, checkpoint: Checkpoint): Promise<void> {
    const snap = checkpoint.source;
    if (!snap) return;
    try {
      const job = await repositories(this.#o.db).jobs.get(run.replicationJobId);
      const server = job?.server as JobServerSnapshot | undefined;
      if (!server) return;
      const connector = await this.#o.connectors.require(server.connectorId);
      await connector.source.release?.(server.vmId, snap.id, false);
    } catch (err) {
      this.#o.log?.warn(
        { err: loggable(err), run: run.replicationRunId },
        'could not release the source snapshot; the next run or sweep removes it',
      );
    }
  }

  async #claim(run: RunRecord, now: number): Promise<Claim | undefined> {
    return this.#o.db.transaction(async (tx): Promise<Claim | undefined> => {
      const r = repositories(tx);
      const current = await r.runs.get(run.replicationRunId);
      if (!current || current.state !== run.state || current.leaseOwner !== run.leaseOwner) return undefined;
      const job = await r.jobs.get(run.replicationJobId);
      if (!job || job.state === 'DELETING' || job.state === 'DELETED') {
        await r.runs.update(run.replicationRunId, { leaseOwner: this.workerId });
        return { kind: 'job-deleted', run: current };
      }
      if (current.attempts >= MAX_ATTEMPTS) {
        await r.runs.update(run.replicationRunId, { leaseOwner: this.workerId });
        return { kind: 'give-up', run: current };
      }
      const patch = {
        state: 'ACTIVE',
        leaseOwner: this.workerId,
        leaseUntil: now + LEASE_MS,
        attempts: current.attempts + 1,
        startedAt: current.startedAt ?? now,
        statusMessage:
          current.state === 'ACTIVE' ? `Resuming at step ${current.step ?? 'prepare'}.` : 'Running.',
      };
      await r.runs.update(run.replicationRunId, patch);
      await r.jobs.update(
        job.replicationJobId,
        { state: 'ACTIVE', statusMessage: `Run ${run.replicationRunId} in progress.`, updatedAt: now },
        { field: 'state', in: jobStatesBefore('ACTIVE') },
      );
      return { kind: 'start', run: { ...current, ...patch } };
    });
  }

  #start(run: RunRecord, connectorId: string | undefined): void {
    const abort = new AbortController();
    const done = this.#execute(run, abort)
      .catch((err: unknown) =>
        this.#o.log?.warn({ err: loggable(err), run: run.replicationRunId }, 'run failed'),
      )
      .finally(() => this.#active.delete(run.replicationRunId));
    this.#active.set(run.replicationRunId, { abort, done, ...(connectorId ? { connectorId } : {}) });
  }

  async #execute(run: RunRecord, abort: AbortController): Promise<void> {
    const signal = abort.signal;
    const { db, clock } = this.#o;
    const r = repositories(db);
    const id = run.replicationRunId;
    const own = { field: 'leaseOwner' as const, in: [this.workerId] };
    const lease = setInterval(() => {
      void r.runs.update(id, { leaseUntil: clock.now() + LEASE_MS }, own).catch(() => undefined);
    }, LEASE_MS / 3);
    lease.unref();
    // DeleteReplicationJob during a run: stop within a couple of seconds.
    const watch = setInterval(() => {
      void r.jobs
        .get(run.replicationJobId)
        .then((j) => {
          if (!j || j.state === 'DELETING') abort.abort(new AbortedError('the job is being deleted'));
        })
        .catch(() => undefined);
    }, 2000);
    watch.unref();
    let checkpoint = (run.checkpoint ?? {}) as Checkpoint;
    try {
      const store = this.#o.store;
      if (!store) throw new InternalError('this server has no image store configured');
      for (const step of ITINERARY) {
        if (checkpoint.done?.includes(step.name)) continue;
        const job = await r.jobs.get(run.replicationJobId);
        if (!job || job.state === 'DELETING' || job.state === 'DELETED') {
          await deleteRunOfDeletedJob(db, id, clock.now());
          return;
        }
        signal.throwIfAborted();
        const snapshot = job.server as JobServerSnapshot;
        const connector = await this.#o.connectors.require(snapshot.connectorId);
        await r.runs.update(id, { step: step.name, stage: step.stage, stageProgress: null }, own);
        let last = 0;
        const out = await step.run({
          run,
          job: job as typeof job & { server: JobServerSnapshot },
          checkpoint,
          connector,
          store,
          signal,
          previous: () => previousRun(db, run.replicationJobId),
          imagesInUse: () => imagesInUse(db),
          progress: (p: RunProgress) => {
            const t = Date.now();
            if (t - last < PROGRESS_EVERY_MS) return;
            last = t;
            void r.runs
              .update(id, { progress: p, stageProgress: progressText(p) }, own)
              .catch(() => undefined);
          },
        });
        checkpoint = { ...checkpoint, ...out, done: [...(checkpoint.done ?? []), step.name] };
        const kept = await r.runs.update(id, { checkpoint }, own);
        if (kept === 0) throw new AbortedError('the run was taken over by another worker');
      }
      const amiId = checkpoint.imageId;
      if (!amiId) throw new InternalError('the itinerary finished without an image');
      await completeRun(db, id, this.workerId, amiId, completionMessage(amiId, checkpoint), clock.now());
    } catch (err) {
      const fe = toFerryError(signal.aborted ? (signal.reason ?? err) : err);
      // Shutting down: leave the run ACTIVE; it resumes from its checkpoint on the next start.
      if (fe.code === 'FERRY_ABORTED' && this.#stopped) return;
      await this.#releaseSource(run, checkpoint);
      const job = await r.jobs.get(run.replicationJobId).catch(() => undefined);
      if (job?.state === 'DELETING') await deleteRunOfDeletedJob(db, id, clock.now());
      else await failRun(db, id, this.workerId, fe, clock.now());
      throw fe;
    } finally {
      clearInterval(lease);
      clearInterval(watch);
    }
  }
}

/**
 * An error as plain data for the log. pino's error serializer tags every error-like
 * object it walks (a symbol property), which throws on a FerryError's frozen details
 * when they have a `message`; thrown from the run's last `catch`, that ended the server.
 */
export function loggable(err: unknown): object {
  const fe = toFerryError(err);
  return { ...fe.toJSON(), details: { ...fe.details }, stack: fe.stack };
}

/**
 * The run's `stageDetails.stageProgress` text. The SMS model has only this string for
 * progress, so `ferry runs --watch` parses it back (src/cli/remote/progress.ts): change
 * the two together.
 */
export function progressText(p: RunProgress): string {
  const pct = p.bytesTotal > 0 ? Math.floor((p.bytesDone / p.bytesTotal) * 100) : 0;
  const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  return `${pct}% (${mib(p.bytesDone)} of ${mib(p.bytesTotal)}, ${mib(p.bytesPerSecond)}/s${
    p.etaSeconds !== undefined ? `, ETA ${p.etaSeconds}s` : ''
  })`;
}

/** The job's most recent COMPLETED run with an image (incremental runs build on it). */
async function previousRun(db: Database, jobId: string): Promise<PreviousRun | undefined> {
  const done = await repositories(db).runs.forJob(jobId, ['COMPLETED']);
  for (let i = done.length - 1; i >= 0; i--) {
    const r = done[i] as RunRecord;
    if (r.amiId) return { amiId: r.amiId, checkpoint: (r.checkpoint ?? {}) as Checkpoint };
  }
  return undefined;
}

/** The run's final statusMessage: what was read, what was stored, and any full re-read. */
export function completionMessage(amiId: string, cp: Checkpoint): string {
  const parts = [
    `Completed: image ${amiId}; ${cp.newBytes ?? 0} new bytes stored for ${cp.virtualBytes ?? 0} bytes of disks`,
  ];
  if (cp.bytesRead !== undefined) parts.push(`${cp.bytesRead} bytes read from the source`);
  const mode = cp.source?.disks.every((d) => d.mode === 'changed')
    ? 'incremental (changed blocks only)'
    : cp.source
      ? 'full read'
      : undefined;
  if (mode) parts.push(mode);
  const rescans = (cp.source?.disks ?? []).filter((d) => d.rescan).map((d) => `disk ${d.index}: ${d.rescan}`);
  if (rescans.length > 0) parts.push(`rescan (${rescans.join('; ')})`);
  for (const w of cp.source?.warnings ?? []) parts.push(w);
  return `${parts.join('; ')}.`;
}
