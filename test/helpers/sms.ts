/** SDK helpers for end-to-end tests: a client for a running server, and waiting for runs. */
import { SMS, type ReplicationRun } from '@aws-sdk/client-sms';
import type { RunningServer } from './server.js';

export function smsClient(
  server: RunningServer,
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } = server.credentials,
): SMS {
  return new SMS({ endpoint: server.url, region: 'us-east-1', credentials, maxAttempts: 1 });
}

/** Polls GetReplicationRuns until `runId` (or, without it, the first run) is finished. */
export async function waitForRun(
  sms: SMS,
  replicationJobId: string,
  runId?: string,
  timeoutMs = 120_000,
  done: (r: ReplicationRun) => boolean = (r) =>
    ['COMPLETED', 'FAILED', 'MISSED', 'DELETED'].includes(r.state ?? ''),
): Promise<ReplicationRun> {
  const until = Date.now() + timeoutMs;
  let last: ReplicationRun | undefined;
  while (Date.now() < until) {
    const runs = (await sms.getReplicationRuns({ replicationJobId })).replicationRunList ?? [];
    last = runId ? runs.find((r) => r.replicationRunId === runId) : runs[0];
    if (last && done(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`run of ${replicationJobId} not finished in time; last: ${JSON.stringify(last)}`);
}
