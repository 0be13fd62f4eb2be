/**
 * The final replication run of a cutover: one on-demand run per server, started after any
 * run already in progress (its point in time may predate the cutover), then waited for.
 * The cutover launches from the images these runs make, so the target holds the source as
 * it was when the cutover started, minus only what changed during the final run.
 */
import { repositories, type Database } from '../../db/index.js';
import { OperationNotPermittedError, LifecycleFailedError } from '../../errors/index.js';
import type { JobService } from '../jobs.js';
import { LIVE_JOB_STATES, OPEN_RUN_STATES } from '../states.js';

export interface FinalSyncOptions {
  readonly db: Database;
  readonly jobs: JobService;
  /** How often run states are read. */
  readonly pollMs: number;
  /** Longest the whole final replication may take before the cutover fails. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** Each server's replication job, or a refusal naming the servers that have none. */
export async function liveJobs(db: Database, serverIds: readonly string[]): Promise<Map<string, string>> {
  const r = repositories(db);
  const jobs = new Map<string, string>();
  const missing: string[] = [];
  for (const id of serverIds) {
    const live = await r.jobs.forServer(id, LIVE_JOB_STATES);
    const job = live[0];
    if (job) jobs.set(id, job.replicationJobId);
    else missing.push(id);
  }
  if (missing.length > 0) {
    throw new OperationNotPermittedError(
      `server(s) ${missing.join(', ')} have no replication job for the final run; start replication or cut over without a final run`,
      { serverIds: missing.join(',') },
    );
  }
  return jobs;
}

/** Runs one final replication per server; resolves with each server's new image id. */
export async function finalReplication(
  o: FinalSyncOptions,
  jobs: ReadonlyMap<string, string>,
  progress: (text: string) => Promise<void>,
): Promise<Map<string, string>> {
  const r = repositories(o.db);
  const deadline = Date.now() + o.timeoutMs;
  const runs = new Map<string, string>();
  for (const [serverId, jobId] of jobs) {
    await until(o, deadline, `a run of job ${jobId} in progress to end`, async () => {
      return (await r.runs.forJob(jobId, OPEN_RUN_STATES)).length === 0;
    });
    const { replicationRunId } = await o.jobs.startOnDemandReplicationRun(
      { replicationJobId: jobId, description: 'Final replication before cutover' },
      { finalRun: true },
    );
    runs.set(serverId, replicationRunId);
  }
  const images = new Map<string, string>();
  await until(o, deadline, 'the final replication runs', async () => {
    for (const [serverId, runId] of runs) {
      if (images.has(serverId)) continue;
      const run = await r.runs.get(runId);
      if (!run) throw new LifecycleFailedError(`final run ${runId} of server ${serverId} vanished`);
      if (run.state === 'COMPLETED' && run.amiId) images.set(serverId, run.amiId);
      else if (!OPEN_RUN_STATES.includes(run.state as never)) {
        throw new LifecycleFailedError(
          `the final replication run ${runId} of server ${serverId} ended ${run.state}: ${run.statusMessage}`,
          { serverId, replicationRunId: runId },
        );
      }
    }
    await progress(`Final replication: ${images.size} of ${runs.size} server(s) done.`);
    return images.size === runs.size;
  });
  return images;
}

async function until(
  o: FinalSyncOptions,
  deadline: number,
  what: string,
  done: () => Promise<boolean>,
): Promise<void> {
  for (;;) {
    o.signal?.throwIfAborted();
    if (await done()) return;
    if (Date.now() > deadline) {
      throw new LifecycleFailedError(
        `timed out after ${Math.round(o.timeoutMs / 1000)} s waiting for ${what}`,
      );
    }
    await new Promise((res) => setTimeout(res, o.pollMs));
  }
}
