/**
 * The guest's file systems frozen around the snapshot's QMP transaction, through its
 * agent (guest-agent.ts): what is frozen, for how long, and what the snapshot then is.
 * Every failure of the agent makes the snapshot crash-consistent (with the reason in its
 * warnings), never fails it; and whatever happens the guest is thawed.
 */
import { lstat } from 'node:fs/promises';
import { toFerryError } from '../../errors/index.js';
import { GuestAgentChannel } from './guest-agent.js';

/**
 * How long the guest may take to freeze: 10 s. Windows' VSS itself gives up on a freeze
 * after 10 s; a Linux guest flushes its dirty pages first, seconds at most. Past that,
 * the snapshot goes on crash-consistent rather than keep the guest's I/O stalled.
 */
export const DEFAULT_FREEZE_TIMEOUT_MS = 10_000;
/** Connect + sync: a running agent answers in milliseconds; a guest without one never does. */
export const DEFAULT_AGENT_SYNC_TIMEOUT_MS = 3_000;
/** One thaw attempt (there are two). A thaw queued behind a slow freeze waits for it. */
export const DEFAULT_THAW_TIMEOUT_MS = 10_000;

export interface FreezeOptions {
  readonly freezeTimeoutMs?: number;
  readonly syncTimeoutMs?: number;
  readonly thawTimeoutMs?: number;
  /** Called right before guest-fsfreeze-freeze is sent (the snapshot records that it froze the guest). */
  readonly beforeFreeze?: () => Promise<void>;
  readonly log?: { warn(obj: object, msg: string): void };
}

export interface Frozen<T> {
  readonly value: T;
  /** Whether the guest's file systems were frozen while `run` ran. */
  readonly applicationConsistent: boolean;
  /** What the snapshot is (application- or crash-consistent) and why, then any thaw problem. */
  readonly warnings: readonly string[];
}

const secs = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/**
 * Runs `run` (the snapshot's QMP transaction) with the guest's file systems frozen by its
 * agent at `agent`, when there is one that answers:
 *
 * - no socket there, or no answer to guest-sync-delimited: `run` runs, crash-consistent;
 * - guest-fsfreeze-freeze fails, times out, or freezes nothing: the guest is thawed
 *   (a failed or late freeze may have frozen some file systems), then `run` runs,
 *   crash-consistent;
 * - frozen: `run` runs, and the guest is thawed after it whatever happened (finally).
 *
 * A thaw is tried twice (the second time on a new connection, after a sync); when both
 * fail, a warning says the guest may still be frozen.
 */
export async function withGuestFrozen<T>(
  agent: string,
  run: () => Promise<T>,
  o: FreezeOptions = {},
): Promise<Frozen<T>> {
  const freezeMs = o.freezeTimeoutMs ?? DEFAULT_FREEZE_TIMEOUT_MS;
  const syncMs = o.syncTimeoutMs ?? DEFAULT_AGENT_SYNC_TIMEOUT_MS;
  const crash = async (why: string): Promise<Frozen<T>> => ({
    value: await run(),
    applicationConsistent: false,
    warnings: [`crash-consistent: ${why}; the guest's file systems were not frozen`],
  });
  if (!(await lstat(agent).catch(() => undefined))?.isSocket()) {
    return crash(`no guest agent channel ${agent}`);
  }
  let ch: GuestAgentChannel;
  try {
    ch = await GuestAgentChannel.connect(agent, syncMs);
  } catch (err) {
    return crash(`the guest agent channel ${agent} could not be opened (${toFerryError(err).message})`);
  }
  const holder = { ch };
  try {
    try {
      await ch.sync(syncMs);
    } catch (err) {
      return await crash(
        `the guest agent did not answer guest-sync-delimited (${toFerryError(err).message})`,
      );
    }
    await o.beforeFreeze?.();
    let why: string | undefined;
    let count = 0;
    const t0 = Date.now();
    try {
      const r = await ch.execute('guest-fsfreeze-freeze', freezeMs);
      if (typeof r !== 'number' || !Number.isSafeInteger(r) || r < 0) {
        why = `guest-fsfreeze-freeze answered ${JSON.stringify(r)?.slice(0, 64)}, not a count`;
      } else if (r === 0) why = 'the guest agent froze no file system';
      else count = r;
    } catch (err) {
      const fe = toFerryError(err);
      why =
        fe.code === 'FERRY_QMP_TIMEOUT'
          ? `guest-fsfreeze-freeze did not finish within ${secs(freezeMs)}`
          : `guest-fsfreeze-freeze failed (${fe.message})`;
    }
    if (why !== undefined) {
      const thawed = await thaw(holder, agent, o);
      const r = await crash(why);
      return { ...r, warnings: [...r.warnings, ...thawed] };
    }
    let value: T;
    let thawed: string[] = [];
    try {
      value = await run();
    } finally {
      thawed = await thaw(holder, agent, o);
    }
    return {
      value,
      applicationConsistent: true,
      warnings: [
        `application-consistent: the guest agent froze ${count} file system${count === 1 ? '' : 's'} for the snapshot (frozen for ${secs(Date.now() - t0)})`,
        ...thawed,
      ],
    };
  } finally {
    holder.ch.close();
  }
}

/** guest-fsfreeze-thaw, twice at most; the warnings to report when it did not succeed. */
async function thaw(holder: { ch: GuestAgentChannel }, agent: string, o: FreezeOptions): Promise<string[]> {
  const ms = o.thawTimeoutMs ?? DEFAULT_THAW_TIMEOUT_MS;
  const errors: string[] = [];
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      if (attempt > 1) {
        holder.ch.close();
        holder.ch = await GuestAgentChannel.connect(agent, ms);
      }
      await holder.ch.execute('guest-fsfreeze-thaw', ms);
      return [];
    } catch (err) {
      errors.push(toFerryError(err).message);
    }
  }
  const warning = `the guest agent did not confirm guest-fsfreeze-thaw (${errors.join('; ')}): the guest's file systems may still be frozen; check with guest-fsfreeze-status and thaw them (guest-fsfreeze-thaw)`;
  o.log?.warn({ agent, errors }, warning);
  return [warning];
}

/**
 * Thaws a guest that a snapshot froze and did not thaw (its process died in between):
 * best effort, bounded, once. Thawing a guest that is not frozen does nothing.
 */
export async function thawAbandoned(
  agent: string,
  log?: FreezeOptions['log'],
  o: Pick<FreezeOptions, 'syncTimeoutMs' | 'thawTimeoutMs'> = {},
): Promise<boolean> {
  if (!(await lstat(agent).catch(() => undefined))?.isSocket()) return false;
  let ch: GuestAgentChannel | undefined;
  try {
    ch = await GuestAgentChannel.connect(agent, o.syncTimeoutMs ?? DEFAULT_AGENT_SYNC_TIMEOUT_MS);
    await ch.sync(o.syncTimeoutMs ?? DEFAULT_AGENT_SYNC_TIMEOUT_MS);
    await ch.execute('guest-fsfreeze-thaw', o.thawTimeoutMs ?? DEFAULT_THAW_TIMEOUT_MS);
    return true;
  } catch (err) {
    log?.warn(
      { agent, err: toFerryError(err).toJSON() },
      'could not thaw the guest an interrupted snapshot froze; check guest-fsfreeze-status',
    );
    return false;
  } finally {
    ch?.close();
  }
}
