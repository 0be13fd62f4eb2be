/**
 * Replication job and run states — the SMS enums, as closed unions — and the transition
 * tables that decide which moves are legal. Every state change in the control plane goes
 * through `moveJob` / `moveRun` (a compare-and-set on the stored state), so an illegal
 * move is a bug caught at once, and two writers cannot both win a race.
 *
 * Job lifecycle (SMS ReplicationJobState):
 *
 *   PENDING ──first run starts──▶ ACTIVE ──runOnce run done──▶ COMPLETED
 *      │                          │  ▲ │
 *      │              run failed  ▼  │ └─ failures ≥ limit ─▶ PAUSED_ON_FAILURE
 *      │                        FAILING ─ failures ≥ limit ─▶ FAILED
 *      └──────── any state ──DeleteReplicationJob──▶ DELETING ──▶ DELETED
 *
 * Run lifecycle (SMS ReplicationRunState):
 *
 *   PENDING ──worker takes it──▶ ACTIVE ──▶ COMPLETED | FAILED
 *      └── not started in time (server down past its window) ──▶ MISSED
 *   job deleted: PENDING/ACTIVE ──▶ DELETING ──▶ DELETED
 */

export const JOB_STATES = [
  'PENDING',
  'ACTIVE',
  'FAILED',
  'DELETING',
  'DELETED',
  'COMPLETED',
  'PAUSED_ON_FAILURE',
  'FAILING',
] as const;
export type JobState = (typeof JOB_STATES)[number];

export const RUN_STATES = [
  'PENDING',
  'MISSED',
  'ACTIVE',
  'FAILED',
  'COMPLETED',
  'DELETING',
  'DELETED',
] as const;
export type RunState = (typeof RUN_STATES)[number];

export const RUN_TYPES = ['ON_DEMAND', 'AUTOMATIC'] as const;
export type RunType = (typeof RUN_TYPES)[number];

export const JOB_TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  PENDING: ['ACTIVE', 'FAILING', 'FAILED', 'DELETING', 'DELETED'],
  ACTIVE: ['ACTIVE', 'COMPLETED', 'FAILING', 'PAUSED_ON_FAILURE', 'FAILED', 'DELETING', 'DELETED'],
  FAILING: ['ACTIVE', 'FAILING', 'PAUSED_ON_FAILURE', 'FAILED', 'DELETING', 'DELETED'],
  // An on-demand run (or an update) resumes a paused or finished job.
  PAUSED_ON_FAILURE: ['ACTIVE', 'DELETING', 'DELETED'],
  FAILED: ['ACTIVE', 'DELETING', 'DELETED'],
  COMPLETED: ['ACTIVE', 'DELETING', 'DELETED'],
  DELETING: ['DELETED'],
  DELETED: [],
};

export const RUN_TRANSITIONS: Readonly<Record<RunState, readonly RunState[]>> = {
  PENDING: ['ACTIVE', 'MISSED', 'FAILED', 'DELETING', 'DELETED'],
  // ACTIVE → ACTIVE: a resumed run (after a crash) keeps its state while it takes a new lease.
  ACTIVE: ['ACTIVE', 'COMPLETED', 'FAILED', 'DELETING'],
  MISSED: ['DELETING', 'DELETED'],
  COMPLETED: ['DELETING', 'DELETED'],
  FAILED: ['DELETING', 'DELETED'],
  DELETING: ['DELETED'],
  DELETED: [],
};

/** States from which a job can still produce runs (visible, not finished for good). */
export const LIVE_JOB_STATES: readonly JobState[] = [
  'PENDING',
  'ACTIVE',
  'FAILING',
  'PAUSED_ON_FAILURE',
  'FAILED',
  'COMPLETED',
];
/** States the scheduler starts runs for. */
export const SCHEDULABLE_JOB_STATES: readonly JobState[] = ['PENDING', 'ACTIVE', 'FAILING'];
/** Job states listed by GetReplicationJobs (deleted jobs disappear, as on AWS). */
export const LISTED_JOB_STATES: readonly JobState[] = JOB_STATES.filter((s) => s !== 'DELETED');
/** Runs that are not finished. */
export const OPEN_RUN_STATES: readonly RunState[] = ['PENDING', 'ACTIVE'];

/** The states `from` may move to (for a compare-and-set: "only if currently one of …"). */
export function jobStatesBefore(to: JobState): JobState[] {
  return JOB_STATES.filter((s) => JOB_TRANSITIONS[s].includes(to));
}

export function runStatesBefore(to: RunState): RunState[] {
  return RUN_STATES.filter((s) => RUN_TRANSITIONS[s].includes(to));
}

export function canMoveJob(from: JobState, to: JobState): boolean {
  return JOB_TRANSITIONS[from].includes(to);
}

export function canMoveRun(from: RunState, to: RunState): boolean {
  return RUN_TRANSITIONS[from].includes(to);
}

export function isJobState(s: string): s is JobState {
  return (JOB_STATES as readonly string[]).includes(s);
}

export function isRunState(s: string): s is RunState {
  return (RUN_STATES as readonly string[]).includes(s);
}
