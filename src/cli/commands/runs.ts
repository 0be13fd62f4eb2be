/**
 * Replication runs of a job on a running `ferry server`, over its SMS API:
 *
 *   ferry runs JOB_ID [--json]                       GetReplicationRuns, every page, oldest first
 *   ferry runs JOB_ID --watch [--run RUN_ID]         follow a run until it ends (remote/watch.ts)
 *   ferry runs start JOB_ID [--description D] [--watch]   StartOnDemandReplicationRun
 *
 * Watching exits 0 when the run completes and with FERRY_RUN_FAILED when it fails, is
 * missed or deleted; --timeout bounds the wait (FERRY_WATCH_TIMEOUT), Ctrl-C stops
 * watching (the run goes on).
 */
import type { ReplicationRun } from '@aws-sdk/client-sms';
import { AbortedError, InvalidArgumentError } from '../../errors/index.js';
import { durationOption, needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { CLIENT_OPTIONS, CLIENT_USAGE } from '../remote/connection.js';
import { allPages, PAGE_SIZE } from '../remote/pages.js';
import { withRemote, type Remote } from '../remote/session.js';
import { describeProgress, watchRun, type WatchOutput } from '../remote/watch.js';
import { cell, renderTable, tableTime } from '../table.js';

const USAGE =
  `ferry runs [start] JOB_ID [--watch [--run RUN_ID] [--interval 1s] [--timeout 2h] [--progress | --no-progress]] ` +
  `[--description D] ${CLIENT_USAGE}`;

const OPTIONS = {
  ...CLIENT_OPTIONS,
  watch: { type: 'boolean' },
  run: { type: 'string' },
  interval: { type: 'string' },
  timeout: { type: 'string' },
  progress: { type: 'boolean' },
  'no-progress': { type: 'boolean' },
  description: { type: 'string' },
} as const;

/** Polling faster than the server records progress (1/s) only costs requests; slower is stale. */
const MIN_INTERVAL_MS = 200;
const MAX_INTERVAL_MS = 60_000;

export async function runsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, USAGE);
  const start = positionals[0] === 'start';
  const [jobId] = needPositionals(start ? positionals.slice(1) : positionals, 1, USAGE) as [string];
  const watch = values.watch === true;
  for (const k of ['run', 'interval', 'timeout', 'progress', 'no-progress'] as const) {
    if (!watch && values[k] !== undefined)
      throw new InvalidArgumentError(`--${k} goes with --watch\nusage: ${USAGE}`);
  }
  if (!start && values.description !== undefined) {
    throw new InvalidArgumentError(`--description is for \`ferry runs start\`\nusage: ${USAGE}`);
  }
  if (start && values.run !== undefined) {
    throw new InvalidArgumentError(
      '`ferry runs start --watch` watches the run it starts; --run is for `ferry runs`',
    );
  }
  const intervalMs = durationOption(values.interval, '--interval') ?? 1000;
  if (intervalMs < MIN_INTERVAL_MS || intervalMs > MAX_INTERVAL_MS) {
    throw new InvalidArgumentError(`--interval is from ${MIN_INTERVAL_MS}ms to ${MAX_INTERVAL_MS / 1000}s`);
  }
  const timeoutMs = durationOption(values.timeout, '--timeout');
  const output: WatchOutput = values.json
    ? 'json'
    : !values['no-progress'] && (values.progress ?? Boolean(process.stderr.isTTY))
      ? 'bar'
      : 'lines';

  return withRemote(values, async (remote) => {
    let runId = values.run;
    if (start) {
      const out = await remote.call((s, o) =>
        s.startOnDemandReplicationRun(
          {
            replicationJobId: jobId,
            ...(values.description !== undefined ? { description: values.description } : {}),
          },
          o,
        ),
      );
      runId = out.replicationRunId;
      if (!watch) {
        if (values.json) writeJson({ replicationRunId: runId });
        else process.stdout.write(`${runId}\n`);
        return 0;
      }
      if (output !== 'json') process.stdout.write(`started ${runId}\n`);
    }
    if (!watch) return list(remote, jobId, values.json === true);
    const abort = new AbortController();
    const onSignal = () => abort.abort(new AbortedError('stopped watching; the run goes on on the server'));
    process.once('SIGINT', onSignal);
    try {
      const run = await watchRun(remote, {
        jobId,
        ...(runId !== undefined ? { runId } : {}),
        intervalMs,
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        output,
        signal: abort.signal,
      });
      if (output !== 'json') process.stdout.write(`${run.replicationRunId} COMPLETED ${run.amiId ?? ''}\n`);
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
    }
  });
}

async function list(remote: Remote, jobId: string, json: boolean): Promise<number> {
  const runs: ReplicationRun[] = await allPages(async (nextToken) => {
    const out = await remote.call((s, o) =>
      s.getReplicationRuns({ replicationJobId: jobId, maxResults: PAGE_SIZE, nextToken }, o),
    );
    return { items: out.replicationRunList, nextToken: out.nextToken };
  });
  if (json) {
    writeJson(runs);
    return 0;
  }
  if (runs.length === 0) {
    process.stdout.write(`(no runs of ${jobId} yet)\n`);
    return 0;
  }
  process.stdout.write(
    renderTable(
      ['RUN ID', 'TYPE', 'STATE', 'STAGE', 'PROGRESS', 'IMAGE', 'SCHEDULED', 'COMPLETED', 'STATUS'],
      runs.map((r) => [
        cell(r.replicationRunId),
        cell(r.type),
        cell(r.state),
        cell(r.stageDetails?.stage, 30),
        r.stageDetails?.stageProgress ? describeProgress(r.stageDetails.stageProgress) : '-',
        cell(r.amiId),
        tableTime(r.scheduledStartTime),
        tableTime(r.completedTime),
        cell(r.statusMessage, 120),
      ]),
    ),
  );
  return 0;
}
