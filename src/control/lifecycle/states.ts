/**
 * The migration lifecycle of an application (AWS MGN's, on Ferry's apps): a closed union
 * and the table of the actions that move it. Every action checks its move here, inside the
 * transaction that stores it, so two operators cannot both win a race.
 *
 *   NOT_READY ──every server has an image──▶ READY_FOR_TESTING ◀───────── revert ─────────┐
 *                                               │ StartTest                               │
 *                                               ▼                                         │
 *                                        TEST_IN_PROGRESS ──MarkReadyForCutover──▶ READY_FOR_CUTOVER
 *                                                                                   │ StartCutover ▲
 *                                   (final replication run, then launch)            ▼              │ RevertCutover /
 *                                                                          CUTOVER_IN_PROGRESS ────┘ a failed cutover
 *                                                                                   ▼
 *                                  ARCHIVED ◀── ArchiveApp ── FINALIZED ◀─Finalize─ CUTOVER_COMPLETE
 *
 * NOT_READY and READY_FOR_TESTING are derived (an app is ready when each of its servers
 * has a replicated image), so they never disagree with the jobs; the others are stored.
 */
export const LIFECYCLE_STATES = [
  'NOT_READY',
  'READY_FOR_TESTING',
  'TEST_IN_PROGRESS',
  'READY_FOR_CUTOVER',
  'CUTOVER_IN_PROGRESS',
  'CUTOVER_COMPLETE',
  'FINALIZED',
  'ARCHIVED',
] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

export const LIFECYCLE_ACTIONS = [
  'StartTest',
  'MarkReadyForCutover',
  'RevertToReadyForTesting',
  'StartCutover',
  'RevertCutover',
  'FinalizeCutover',
  'ArchiveApp',
  'UnarchiveApp',
] as const;
export type LifecycleAction = (typeof LIFECYCLE_ACTIONS)[number];

/** From which states each action may start. */
export const ACTION_FROM: Readonly<Record<LifecycleAction, readonly LifecycleState[]>> = {
  StartTest: ['READY_FOR_TESTING'],
  MarkReadyForCutover: ['TEST_IN_PROGRESS'],
  RevertToReadyForTesting: ['TEST_IN_PROGRESS', 'READY_FOR_CUTOVER'],
  StartCutover: ['READY_FOR_CUTOVER'],
  RevertCutover: ['CUTOVER_COMPLETE'],
  FinalizeCutover: ['CUTOVER_COMPLETE'],
  // An app that never went live, or one that is done, can be put away.
  ArchiveApp: ['NOT_READY', 'READY_FOR_TESTING', 'FINALIZED'],
  UnarchiveApp: ['ARCHIVED'],
};

/** Every stored move (actions and their outcomes); anything else is a bug. */
export const LIFECYCLE_TRANSITIONS: Readonly<Record<LifecycleState, readonly LifecycleState[]>> = {
  NOT_READY: ['ARCHIVED'],
  READY_FOR_TESTING: ['TEST_IN_PROGRESS', 'ARCHIVED'],
  // A test launch that fails goes back to READY_FOR_TESTING.
  TEST_IN_PROGRESS: ['READY_FOR_CUTOVER', 'READY_FOR_TESTING'],
  READY_FOR_CUTOVER: ['CUTOVER_IN_PROGRESS', 'READY_FOR_TESTING'],
  // A cutover that fails (final run or launch) goes back to READY_FOR_CUTOVER.
  CUTOVER_IN_PROGRESS: ['CUTOVER_COMPLETE', 'READY_FOR_CUTOVER'],
  CUTOVER_COMPLETE: ['FINALIZED', 'READY_FOR_CUTOVER'],
  FINALIZED: ['ARCHIVED'],
  // Unarchived apps start again from the derived states.
  ARCHIVED: ['NOT_READY', 'READY_FOR_TESTING'],
};

/** States with work in flight: the app's launch or final replication belongs to the lifecycle. */
export const BUSY_STATES: readonly LifecycleState[] = ['CUTOVER_IN_PROGRESS'];

/** States computed from the app's images rather than stored. */
export function isDerived(s: LifecycleState | undefined): boolean {
  return s === undefined || s === 'NOT_READY' || s === 'READY_FOR_TESTING';
}
