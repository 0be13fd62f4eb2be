/**
 * Replication jobs of a running `ferry server`, over its SMS API:
 *
 *   ferry jobs [--json]                                          GetReplicationJobs, every page
 *   ferry jobs create SERVER_ID (--frequency N | --run-once) [--seed ISO-8601]
 *                    [--description D] [--keep N] [--json]       CreateReplicationJob
 *   ferry jobs delete JOB_ID [--json]                            DeleteReplicationJob
 *
 * --frequency is in the server's unit (hours; minutes with `ferry server --frequency-unit
 * minutes`); the server checks its range. --seed defaults to now (the first run starts then).
 */
import { InvalidArgumentError } from '../../errors/index.js';
import { intOption, needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { CLIENT_OPTIONS, CLIENT_USAGE } from '../remote/connection.js';
import { allPages, PAGE_SIZE } from '../remote/pages.js';
import { withRemote } from '../remote/session.js';
import { cell, renderTable, tableTime } from '../table.js';

const USAGE =
  `ferry jobs [create SERVER_ID (--frequency N | --run-once) [--seed ISO-8601] [--description D] [--keep N] ` +
  `| delete JOB_ID] ${CLIENT_USAGE}`;

const OPTIONS = {
  ...CLIENT_OPTIONS,
  frequency: { type: 'string' },
  'run-once': { type: 'boolean' },
  seed: { type: 'string' },
  description: { type: 'string' },
  keep: { type: 'string' },
} as const;

export async function jobsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, USAGE);
  const [action, ...rest] = positionals;
  const createOnly = ['frequency', 'run-once', 'seed', 'description', 'keep'] as const;
  if (action !== 'create') {
    const given = createOnly.find((k) => values[k] !== undefined);
    if (given) throw new InvalidArgumentError(`--${given} is for \`ferry jobs create\`\nusage: ${USAGE}`);
  }
  if (action === 'create') {
    const [serverId] = needPositionals(rest, 1, USAGE) as [string];
    return create(serverId, values);
  }
  if (action === 'delete') {
    const [jobId] = needPositionals(rest, 1, USAGE) as [string];
    return withRemote(values, async (remote) => {
      await remote.call((s, o) => s.deleteReplicationJob({ replicationJobId: jobId }, o));
      if (values.json) writeJson({ replicationJobId: jobId, deleting: true });
      else process.stdout.write(`deleting ${jobId}\n`);
      return 0;
    });
  }
  if (action !== undefined) {
    throw new InvalidArgumentError(`unknown jobs command ${JSON.stringify(action)}\nusage: ${USAGE}`);
  }
  return list(values);
}

async function create(
  serverId: string,
  values: {
    frequency?: string;
    'run-once'?: boolean;
    seed?: string;
    description?: string;
    keep?: string;
    json?: boolean;
  } & Parameters<typeof withRemote>[0],
): Promise<number> {
  const frequency = intOption(values.frequency, '--frequency');
  const runOnce = values['run-once'] === true;
  if (frequency === undefined && !runOnce) {
    throw new InvalidArgumentError(`give --frequency N (or --run-once)\nusage: ${USAGE}`);
  }
  const keep = intOption(values.keep, '--keep');
  const seed = values.seed === undefined ? new Date() : parseTime(values.seed);
  return withRemote(values, async (remote) => {
    const out = await remote.call((s, o) =>
      s.createReplicationJob(
        {
          serverId,
          seedReplicationTime: seed,
          ...(frequency !== undefined ? { frequency } : {}),
          ...(runOnce ? { runOnce } : {}),
          ...(values.description !== undefined ? { description: values.description } : {}),
          ...(keep !== undefined ? { numberOfRecentAmisToKeep: keep } : {}),
        },
        o,
      ),
    );
    if (values.json) writeJson({ replicationJobId: out.replicationJobId });
    else process.stdout.write(`${out.replicationJobId}\n`);
    return 0;
  });
}

/** ISO 8601 with a time zone (`2025-01-31T22:00:00Z`, `…+01:00`): a seed must not depend on TZ. */
export function parseTime(text: string): Date {
  const ok = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(text);
  const d = new Date(text);
  if (!ok || Number.isNaN(d.getTime())) {
    throw new InvalidArgumentError(
      `--seed ${JSON.stringify(text)} is not an ISO 8601 time with a zone (e.g. 2025-01-31T22:00:00Z)`,
    );
  }
  return d;
}

async function list(values: { json?: boolean } & Parameters<typeof withRemote>[0]): Promise<number> {
  return withRemote(values, async (remote) => {
    const jobs = await allPages(async (nextToken) => {
      const out = await remote.call((s, o) => s.getReplicationJobs({ maxResults: PAGE_SIZE, nextToken }, o));
      return { items: out.replicationJobList, nextToken: out.nextToken };
    });
    if (values.json) {
      writeJson(jobs);
      return 0;
    }
    if (jobs.length === 0) {
      process.stdout.write('(no replication jobs)\n');
      return 0;
    }
    process.stdout.write(
      renderTable(
        ['JOB ID', 'SERVER ID', 'NAME', 'STATE', 'EVERY', 'NEXT RUN', 'LATEST IMAGE', 'STATUS'],
        jobs.map((j) => [
          cell(j.replicationJobId),
          cell(j.serverId),
          cell(j.vmServer?.vmName, 40),
          cell(j.state),
          j.runOnce ? 'once' : cell(j.frequency),
          tableTime(j.nextReplicationRunStartTime),
          cell(j.latestAmiId),
          cell(j.statusMessage, 100),
        ]),
      ),
    );
    return 0;
  });
}
