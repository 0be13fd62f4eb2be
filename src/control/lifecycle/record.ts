/**
 * How an app's lifecycle is stored (in its record, beside its launch state) and read:
 * the effective state (derived NOT_READY / READY_FOR_TESTING, else the stored one), the
 * per-server view, and the guarded move every action makes.
 */
import type { Repositories } from '../../db/index.js';
import { LifecycleTransitionError } from '../../errors/index.js';
import type { AppBody } from '../apps.js';
import { requireApp } from '../apps.js';
import {
  ACTION_FROM,
  LIFECYCLE_TRANSITIONS,
  isDerived,
  type LifecycleAction,
  type LifecycleState,
} from './states.js';

/** History entries kept per app (newest last): enough for an audit of one migration. */
export const MAX_HISTORY = 50;

export interface CutoverTimings {
  readonly startedAt: number;
  readonly finalReplicationMs?: number;
  readonly launchMs?: number;
  readonly totalMs?: number;
}

export interface StoredLifecycle {
  readonly state: LifecycleState;
  readonly message: string;
  readonly updatedAt: number;
  readonly history: readonly { state: LifecycleState; message: string; time: number }[];
  readonly cutover?: CutoverTimings;
}

/** The app record's body with the lifecycle fields this module adds. */
export type LifecycleBody = AppBody & { readonly lifecycle?: StoredLifecycle; readonly wave?: string };

export interface ServerReadiness {
  readonly serverId: string;
  /** The image a test or cutover would launch (the latest of its replication job). */
  readonly imageId?: string;
}

/** Each server of the app with its latest image, in group order. */
export async function readiness(r: Repositories, body: AppBody): Promise<ServerReadiness[]> {
  const out: ServerReadiness[] = [];
  for (const serverId of body.serverGroups.flatMap((g) => g.serverIds)) {
    const jobs = await r.jobs.forServer(serverId, [
      'PENDING',
      'ACTIVE',
      'FAILING',
      'PAUSED_ON_FAILURE',
      'COMPLETED',
      'FAILED',
    ]);
    const imageId = jobs.find((j) => j.latestAmiId)?.latestAmiId ?? undefined;
    out.push({ serverId, ...(imageId ? { imageId } : {}) });
  }
  return out;
}

export interface Effective {
  readonly state: LifecycleState;
  readonly message: string;
  readonly servers: readonly ServerReadiness[];
}

export async function effectiveState(r: Repositories, body: LifecycleBody): Promise<Effective> {
  const servers = await readiness(r, body);
  const stored = body.lifecycle;
  if (stored && !isDerived(stored.state)) return { state: stored.state, message: stored.message, servers };
  const waiting = servers.filter((s) => !s.imageId).map((s) => s.serverId);
  if (servers.length === 0) {
    return { state: 'NOT_READY', message: 'The application has no servers.', servers };
  }
  if (waiting.length > 0) {
    return {
      state: 'NOT_READY',
      message: `Waiting for a replicated image of ${waiting.join(', ')}.`,
      servers,
    };
  }
  return {
    state: 'READY_FOR_TESTING',
    // A message from the last move back (a failed test, a revert) says why it is here.
    message: stored?.state === 'READY_FOR_TESTING' ? stored.message : 'Every server has an image.',
    servers,
  };
}

/**
 * Moves the app from its effective state to `to`, checking the action's allowed states
 * and the transition table. Call inside a transaction: the read and the write are one.
 */
export async function move(
  r: Repositories,
  appId: string,
  now: number,
  to: LifecycleState,
  message: string,
  o: { action?: LifecycleAction; from?: readonly LifecycleState[]; cutover?: CutoverTimings | null } = {},
): Promise<LifecycleState> {
  const app = await requireApp(r, appId);
  const body = app.body as LifecycleBody;
  const { state: from } = await effectiveState(r, body);
  const allowed = o.from ?? (o.action ? ACTION_FROM[o.action] : undefined);
  if (allowed && !allowed.includes(from)) {
    throw new LifecycleTransitionError(
      `application ${appId} is ${from}; ${o.action ?? 'this'} needs ${allowed.join(' or ')}`,
      { appId, state: from, ...(o.action ? { action: o.action } : {}) },
    );
  }
  if (from !== to && !LIFECYCLE_TRANSITIONS[from].includes(to)) {
    throw new LifecycleTransitionError(`application ${appId} cannot go from ${from} to ${to}`, {
      appId,
      state: from,
      to,
    });
  }
  const history = [...(body.lifecycle?.history ?? []), { state: to, message, time: now }].slice(-MAX_HISTORY);
  const cutover = o.cutover === null ? undefined : (o.cutover ?? body.lifecycle?.cutover);
  const lifecycle: StoredLifecycle = {
    state: to,
    message,
    updatedAt: now,
    history: from === to && body.lifecycle?.state === to ? replaceLast(history) : history,
    ...(cutover ? { cutover } : {}),
  };
  await r.apps.update(appId, { body: { ...body, lifecycle }, updatedAt: now });
  return from;
}

/** A progress message within one state replaces that state's last entry, not floods history. */
function replaceLast<T>(history: T[]): T[] {
  return history.length >= 2 ? [...history.slice(0, -2), history.at(-1)!] : history;
}
