/**
 * How a run ends, and what that does to its job: the state-machine moves of
 * states.ts applied in one transaction with the run's final state. Status messages say
 * what happened and what a person can do about it.
 */
import { repositories, type Database, type JobRecord, type SqlExecutor } from '../../db/index.js';
import type { FerryError } from '../../errors/index.js';
import { markServerTerminated } from '../jobs.js';
import { jobStatesBefore, runStatesBefore, type JobState } from '../states.js';

/** Consecutive failed runs after which a scheduled job pauses (SMS: PAUSED_ON_FAILURE). */
export const FAILURES_BEFORE_PAUSE = 3;

const SUGGESTIONS: Readonly<Record<string, string>> = {
  FERRY_NO_CONNECTORS: 'Check that the connector is running and associated (GetConnectors).',
  FERRY_SERVER_NOT_REPLICABLE: 'Check the server in the catalog (ImportServerCatalog, GetServers).',
  FERRY_IMAGE_CORRUPT: 'The source disk is damaged; repair or re-export it.',
  FERRY_IMAGE_UNSUPPORTED:
    'The source disk uses a feature Ferry does not read; convert it (ferry image convert).',
  FERRY_IO_ERROR: 'Check free space and permissions of the data directory and the source.',
};

export function failureMessage(err: FerryError): string {
  const hint = SUGGESTIONS[err.code] ?? 'Start an on-demand run to retry; the server log has details.';
  return `${err.code}: ${err.message}. ${hint}`;
}

export async function completeRun(
  db: Database,
  runId: string,
  owner: string,
  amiId: string,
  message: string,
  now: number,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const r = repositories(tx);
    const run = await r.runs.get(runId);
    if (!run || run.leaseOwner !== owner || run.state !== 'ACTIVE') return false;
    await r.runs.update(runId, {
      state: 'COMPLETED',
      amiId,
      completedTime: now,
      statusMessage: message,
      stage: 'Completed',
      stageProgress: '100%',
      leaseOwner: null,
      leaseUntil: null,
    });
    const job = await r.jobs.get(run.replicationJobId);
    if (!job) return true;
    const to: JobState = job.runOnce ? 'COMPLETED' : 'ACTIVE';
    await r.jobs.update(
      job.replicationJobId,
      {
        state: to,
        latestAmiId: amiId,
        consecutiveFailures: 0,
        statusMessage:
          to === 'COMPLETED' ? `Completed: image ${amiId}.` : `Latest image ${amiId}; next run as scheduled.`,
        updatedAt: now,
      },
      { field: 'state', in: jobStatesBefore(to) },
    );
    return true;
  });
}

export async function failRun(
  db: Database,
  runId: string,
  owner: string | null,
  err: FerryError,
  now: number,
): Promise<void> {
  await db.transaction(async (tx) => {
    const r = repositories(tx);
    const run = await r.runs.get(runId);
    if (
      !run ||
      (owner !== null && run.leaseOwner !== owner) ||
      !runStatesBefore('FAILED').includes(run.state as never)
    )
      return;
    const message = failureMessage(err);
    await r.runs.update(runId, {
      state: 'FAILED',
      completedTime: now,
      statusMessage: message,
      leaseOwner: null,
      leaseUntil: null,
    });
    const job = await r.jobs.get(run.replicationJobId);
    if (!job) return;
    const failures = job.consecutiveFailures + 1;
    const to: JobState = job.runOnce
      ? 'FAILED'
      : failures >= FAILURES_BEFORE_PAUSE
        ? 'PAUSED_ON_FAILURE'
        : 'FAILING';
    const statusMessage =
      to === 'PAUSED_ON_FAILURE'
        ? `Paused after ${failures} failed runs in a row; fix the cause, then start an on-demand run. Last error: ${message}`
        : `Run ${runId} failed (${failures} in a row): ${message}`;
    await r.jobs.update(
      job.replicationJobId,
      {
        state: to,
        consecutiveFailures: failures,
        statusMessage,
        updatedAt: now,
        ...(to === 'FAILED' ? { nextRunAt: null } : {}),
      },
      { field: 'state', in: jobStatesBefore(to) },
    );
  });
}

/** A run stopped because its job is being deleted: the run and then the job become DELETED. */
export async function deleteRunOfDeletedJob(db: Database, runId: string, now: number): Promise<void> {
  await db.transaction(async (tx) => {
    const r = repositories(tx);
    const run = await r.runs.get(runId);
    if (!run) return;
    if (runStatesBefore('DELETED').includes(run.state as never)) {
      await r.runs.update(runId, {
        state: 'DELETED',
        completedTime: now,
        statusMessage: 'Stopped: the job was deleted.',
        leaseOwner: null,
        leaseUntil: null,
      });
    }
    const job = await r.jobs.get(run.replicationJobId);
    if (job && job.state === 'DELETING') await finishJobDeletion(tx, job, now);
  });
}

async function finishJobDeletion(x: SqlExecutor, job: JobRecord, now: number): Promise<void> {
  const r = repositories(x);
  await r.jobs.update(
    job.replicationJobId,
    { state: 'DELETED', statusMessage: 'Deleted.', nextRunAt: null, updatedAt: now },
    { field: 'state', in: ['DELETING'] },
  );
  await markServerTerminated(r, job);
}
