/**
 * `ferry runs JOB_ID --watch`: follows one replication run until it ends, by polling the
 * job (GetReplicationJobs embeds its recent runs; one request per poll however many runs
 * the job has had). Which run: the one named (--run, or the one `runs start` just
 * started); else the job's ACTIVE run, else its next PENDING one, else its latest (which
 * may already be over: then it is reported at once); with no run yet, the first to appear.
 *
 * Output: on a terminal, a progress bar (stderr) for the bytes of the current stage and a
 * line (stdout) per stage or state change; otherwise a line per change; with --json, the
 * run (SMS ReplicationRun) as one JSON line per change, and nothing else. COMPLETED returns the run;
 * FAILED, MISSED or DELETED throw FERRY_RUN_FAILED.
 */
import type { ReplicationRun, SMS } from '@aws-sdk/client-sms';
import {
  AbortedError,
  ApiServerError,
  ApiUnreachableError,
  FerryError,
  NotFoundError,
  RunFailedError,
  WatchTimeoutError,
} from '../../errors/index.js';
import { formatBytes } from '../output.js';
import { formatDuration, ProgressBar } from '../progress-bar.js';
import { cell, tableTime } from '../table.js';
import { allPages, PAGE_SIZE } from './pages.js';
import { parseStageProgress } from './progress.js';
import type { Remote } from './session.js';

export type WatchOutput = 'bar' | 'lines' | 'json';

export interface WatchOptions {
  readonly jobId: string;
  readonly runId?: string;
  readonly intervalMs: number;
  readonly timeoutMs?: number;
  readonly output: WatchOutput;
  readonly signal?: AbortSignal;
}

/** Run states after which nothing changes any more (SMS ReplicationRunState). */
const FINAL = new Set(['COMPLETED', 'FAILED', 'MISSED', 'DELETED']);
/** A server that restarts (runs resume after a restart) may be away this long before we give up. */
const UNREACHABLE_GRACE_MS = 60_000;

export async function watchRun(remote: Remote, o: WatchOptions): Promise<ReplicationRun> {
  const deadline = o.timeoutMs === undefined ? Infinity : Date.now() + o.timeoutMs;
  const view = new RunView(o.output);
  let runId = o.runId;
  let unreachableSince: number | undefined;
  try {
    for (;;) {
      o.signal?.throwIfAborted();
      let run: ReplicationRun | undefined;
      try {
        run = await poll(remote, o.jobId, runId);
        unreachableSince = undefined;
      } catch (err) {
        if (!transient(err)) throw err;
        unreachableSince ??= Date.now();
        if (Date.now() - unreachableSince > UNREACHABLE_GRACE_MS) throw err;
        view.note(`server unreachable (${(err as FerryError).code}); retrying`);
      }
      if (run) {
        runId ??= run.replicationRunId;
        view.show(run);
        if (FINAL.has(run.state ?? '')) return finish(run);
      } else if (unreachableSince === undefined) {
        view.note(`waiting for a run of ${o.jobId}`);
      }
      if (Date.now() >= deadline) {
        throw new WatchTimeoutError(
          `stopped watching ${runId ?? o.jobId} after the --timeout; the run goes on on the server`,
          { replicationJobId: o.jobId, ...(runId ? { replicationRunId: runId } : {}) },
        );
      }
      await sleep(Math.min(o.intervalMs, Math.max(0, deadline - Date.now())), o.signal);
    }
  } finally {
    view.end();
  }
}

function transient(err: unknown): boolean {
  return FerryError.is(err) && (err.code === ApiUnreachableError.code || err.code === ApiServerError.code);
}

async function poll(
  remote: Remote,
  jobId: string,
  runId: string | undefined,
): Promise<ReplicationRun | undefined> {
  const out = await remote.call((s, o) => s.getReplicationJobs({ replicationJobId: jobId }, o));
  const runs = out.replicationJobList?.[0]?.replicationRunList ?? [];
  if (runId === undefined) return pick(runs);
  return runs.find((r) => r.replicationRunId === runId) ?? (await findRun(remote, jobId, runId));
}

/** ACTIVE, else the next PENDING, else the latest. Runs arrive oldest first. */
export function pick(runs: readonly ReplicationRun[]): ReplicationRun | undefined {
  return runs.findLast((r) => r.state === 'ACTIVE') ?? runs.find((r) => r.state === 'PENDING') ?? runs.at(-1);
}

/** A run no longer among the job's recent ones (DELETED runs are not embedded): page for it. */
async function findRun(remote: Remote, jobId: string, runId: string): Promise<ReplicationRun> {
  const runs = await allPages(async (nextToken) => {
    const out = await remote.call((s: SMS, o) =>
      s.getReplicationRuns({ replicationJobId: jobId, maxResults: PAGE_SIZE, nextToken }, o),
    );
    return { items: out.replicationRunList, nextToken: out.nextToken };
  });
  const run = runs.find((r) => r.replicationRunId === runId);
  if (!run) {
    throw new NotFoundError(`replication job ${jobId} has no run ${runId}`, {
      replicationJobId: jobId,
      replicationRunId: runId,
    });
  }
  return run;
}

function finish(run: ReplicationRun): ReplicationRun {
  if (run.state === 'COMPLETED') return run;
  const message = run.statusMessage ?? '';
  const runCode = /^(FERRY_[A-Z0-9_]+):/.exec(message)?.[1];
  throw new RunFailedError(`run ${run.replicationRunId} ended ${run.state}: ${message || '(no message)'}`, {
    replicationRunId: run.replicationRunId,
    state: run.state,
    ...(runCode ? { runCode } : {}),
  });
}

async function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  const { setTimeout: wait } = await import('node:timers/promises');
  try {
    await wait(ms, undefined, signal ? { signal } : {});
  } catch {
    throw signal?.reason instanceof Error ? signal.reason : new AbortedError('stopped watching');
  }
}

/** What a person or a script sees of the run as it changes. */
class RunView {
  readonly #output: WatchOutput;
  readonly #bar: ProgressBar | undefined;
  #lastKey = '';
  #lastMessage: string | undefined;
  #lastNote = '';

  constructor(output: WatchOutput) {
    this.#output = output;
    this.#bar = output === 'bar' ? new ProgressBar('run', { showRead: false }) : undefined;
  }

  show(run: ReplicationRun): void {
    const stage = run.stageDetails?.stage;
    const progressText = run.stageDetails?.stageProgress;
    const progress = parseStageProgress(progressText);
    if (this.#output === 'json') {
      const key = JSON.stringify([run.state, stage, progressText, run.statusMessage, run.amiId]);
      if (key !== this.#lastKey) process.stdout.write(JSON.stringify(run) + '\n');
      this.#lastKey = key;
      return;
    }
    // With a bar, byte counts redraw the bar (or are not there yet); a line is for what else changed.
    const key = JSON.stringify([
      run.state,
      stage,
      this.#bar && (progress || !progressText) ? '' : progressText,
      run.statusMessage,
    ]);
    if (key !== this.#lastKey) {
      this.#lastKey = key;
      const text = this.#bar && (progress || !progressText) ? undefined : progressText;
      this.#line(lineFor(run, text, run.statusMessage !== this.#lastMessage));
      this.#lastMessage = run.statusMessage;
    }
    if (this.#bar && progress && !FINAL.has(run.state ?? '')) this.#bar.update(progress);
  }

  note(text: string): void {
    if (text === this.#lastNote) return;
    this.#lastNote = text;
    // JSON lines are runs only; stderr stays for the one error line.
    if (this.#output !== 'json') this.#line(`${tableTime(new Date())} ${text}`);
  }

  end(): void {
    this.#bar?.clear();
  }

  #line(text: string): void {
    this.#bar?.clear();
    process.stdout.write(text + '\n');
  }
}

/** `TIME RUN STATE STAGE [PROGRESS] [IMAGE] [— MESSAGE]` */
export function lineFor(run: ReplicationRun, progressText: string | undefined, withMessage: boolean): string {
  const parts = [
    tableTime(new Date()),
    cell(run.replicationRunId),
    cell(run.state),
    cell(run.stageDetails?.stage),
  ];
  if (progressText) parts.push(describeProgress(progressText));
  if (run.amiId) parts.push(cell(run.amiId));
  if (withMessage && run.statusMessage) parts.push(`— ${cell(run.statusMessage, 400)}`);
  return parts.join(' ');
}

/** `45% 12.3 MiB/100 MiB 5.0 MiB/s ETA 00:12`, or the server's text when it is not bytes. */
export function describeProgress(text: string): string {
  const p = parseStageProgress(text);
  if (!p) return cell(text);
  const pct = p.total > 0 ? Math.floor((p.done / p.total) * 100) : 100;
  const eta = p.etaMs === undefined ? '' : ` ETA ${formatDuration(p.etaMs)}`;
  return `${pct}% ${formatBytes(p.done)}/${formatBytes(p.total)} ${formatBytes(p.rate)}/s${eta}`;
}
