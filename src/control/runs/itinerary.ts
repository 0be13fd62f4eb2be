/**
 * A replication run is an itinerary: named steps run in order, each idempotent, with the
 * run's checkpoint persisted after every step. After a crash the run resumes at the first
 * step not recorded as done; a step that was half-way re-runs from its start (and must
 * cope: the image write resumes the interrupted store write instead of starting over).
 *
 *   prepare      which disks the server has now (from its connector's inventory)
 *   snapshot     a consistent point in time of the source (folder source: the files as they are)
 *   write-image  every disk through the image store; only changed blocks are stored
 *   record       amiId on the run and the job, retention (numberOfRecentAmisToKeep)
 */
import type { Connector } from '../../connectors/index.js';
import type { JobRecord, RunRecord } from '../../db/index.js';
import type { Repository } from '../../store/index.js';
import type { JobServerSnapshot, RunProgress } from '../views.js';

export const STEP_NAMES = ['prepare', 'snapshot', 'write-image', 'record'] as const;
export type StepName = (typeof STEP_NAMES)[number];

export interface CheckpointDisk {
  readonly index: number;
  readonly name: string;
  readonly virtualSize: number;
}

/** What the steps done so far produced; stored as JSON on the run after each step. */
export interface Checkpoint {
  readonly done?: readonly StepName[];
  readonly disks?: readonly CheckpointDisk[];
  readonly snapshotAt?: number;
  readonly imageId?: string;
  readonly newBytes?: number;
  readonly virtualBytes?: number;
}

export interface StepContext {
  readonly run: RunRecord;
  readonly job: JobRecord & { readonly server: JobServerSnapshot };
  readonly checkpoint: Checkpoint;
  readonly connector: Connector;
  readonly store: Repository;
  readonly signal: AbortSignal;
  /** Reports copy progress (persisted, throttled, by the executor). */
  progress(p: RunProgress): void;
}

export interface Step {
  readonly name: StepName;
  /** ReplicationRunStageDetails.stage while the step runs. */
  readonly stage: string;
  /** Does the step's work; returns what to merge into the checkpoint. */
  run(ctx: StepContext): Promise<Partial<Checkpoint>>;
}
