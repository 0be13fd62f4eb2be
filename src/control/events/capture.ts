/**
 * Which stored changes are events: pure functions from a row before and after a write
 * (src/db/observe.ts) to the events it means. Only state changes count — progress and
 * lease updates of the same rows are not events.
 */
import type { AppRecord, InstanceRecord, JobRecord, RunRecord } from '../../db/index.js';
import type { AppBody } from '../apps.js';
import type { StoredLifecycle } from '../lifecycle/record.js';
import type { NewEvent } from './catalog.js';

/** The fields whose writes can produce events, per table. */
export const WATCHED: Readonly<Record<string, readonly string[]>> = {
  replication_jobs: ['state'],
  replication_runs: ['state'],
  instances: ['state'],
  apps: ['body', 'validationOutputs'],
};

type Capture = (before: object | undefined, after: object) => NewEvent[];

const compact = (ids: readonly (string | null | undefined)[]) =>
  ids.filter((i): i is string => typeof i === 'string' && i.length > 0);

const job: Capture = (b, a) => {
  const before = b as JobRecord | undefined;
  const after = a as JobRecord;
  if (before && before.state === after.state) return [];
  return [
    {
      detailType: 'Replication Job State Change',
      resources: compact([after.replicationJobId, after.serverId, after.appId]),
      detail: {
        replicationJobId: after.replicationJobId,
        serverId: after.serverId,
        ...(after.appId ? { appId: after.appId } : {}),
        state: after.state,
        previousState: before?.state ?? null,
        statusMessage: after.statusMessage,
        ...(after.latestAmiId ? { latestAmiId: after.latestAmiId } : {}),
      },
    },
  ];
};

const run: Capture = (b, a) => {
  const before = b as RunRecord | undefined;
  const after = a as RunRecord;
  if (before && before.state === after.state) return [];
  return [
    {
      detailType: 'Replication Run State Change',
      resources: compact([after.replicationRunId, after.replicationJobId, after.amiId]),
      detail: {
        replicationRunId: after.replicationRunId,
        replicationJobId: after.replicationJobId,
        type: after.type,
        state: after.state,
        previousState: before?.state ?? null,
        statusMessage: after.statusMessage,
        ...(after.amiId ? { amiId: after.amiId } : {}),
      },
    },
  ];
};

const instance: Capture = (b, a) => {
  const before = b as InstanceRecord | undefined;
  const after = a as InstanceRecord;
  if (before && before.state === after.state) return [];
  return [
    {
      detailType: 'Instance State Change',
      resources: compact([after.instanceId, after.appId, after.serverId, after.imageId]),
      detail: {
        instanceId: after.instanceId,
        ...(after.appId ? { appId: after.appId } : {}),
        serverId: after.serverId,
        imageId: after.imageId,
        instanceType: after.instanceType,
        state: after.state,
        previousState: before?.state ?? null,
        statusMessage: after.statusMessage,
      },
    },
  ];
};

interface Output {
  readonly validationId: string;
  readonly status: string;
  readonly statusMessage?: string;
  readonly latestValidationTime: number;
}

const app: Capture = (b, a) => {
  const before = b as AppRecord | undefined;
  const after = a as AppRecord;
  if (!before) return [];
  const out: NewEvent[] = [];
  const was = before.body as AppBody & { lifecycle?: StoredLifecycle };
  const is = after.body as AppBody & { lifecycle?: StoredLifecycle };
  const name = is.name;
  if (is.launch && is.launch.status !== was.launch?.status) {
    out.push({
      detailType: 'App Launch Status Change',
      resources: [after.appId, ...is.launch.instanceIds],
      detail: {
        appId: after.appId,
        name,
        launchStatus: is.launch.status,
        previousLaunchStatus: was.launch?.status ?? null,
        message: is.launch.message,
        instanceIds: is.launch.instanceIds,
        ...(is.launch.purpose ? { purpose: is.launch.purpose } : {}),
      },
    });
  }
  if (is.lifecycle && is.lifecycle.state !== was.lifecycle?.state) {
    out.push({
      detailType: 'App Lifecycle State Change',
      resources: [after.appId],
      detail: {
        appId: after.appId,
        name,
        state: is.lifecycle.state,
        previousState: was.lifecycle?.state ?? null,
        message: is.lifecycle.message,
      },
    });
  }
  const previous = new Map(((before.validationOutputs ?? []) as Output[]).map((o) => [o.validationId, o]));
  for (const o of (after.validationOutputs ?? []) as Output[]) {
    const p = previous.get(o.validationId);
    if (p && p.status === o.status && p.latestValidationTime === o.latestValidationTime) continue;
    out.push({
      detailType: 'App Validation Result',
      resources: [after.appId, o.validationId],
      detail: {
        appId: after.appId,
        name,
        validationId: o.validationId,
        status: o.status,
        ...(o.statusMessage !== undefined ? { statusMessage: o.statusMessage } : {}),
      },
    });
  }
  return out;
};

const CAPTURES: Readonly<Record<string, Capture>> = {
  replication_jobs: job,
  replication_runs: run,
  instances: instance,
  apps: app,
};

/** The events a write of `table` from `before` to `after` means (none for other tables). */
export function eventsOf(table: string, before: object | undefined, after: object): NewEvent[] {
  return CAPTURES[table]?.(before, after) ?? [];
}
