/**
 * A replication run is an itinerary: named steps run in order, each idempotent, with the
 * run's checkpoint persisted after every step. After a crash the run resumes at the first
 * step not recorded as done; a step that was half-way re-runs from its start (and must
 * cope: the image write resumes the interrupted store write instead of starting over).
 *
 *   prepare      which disks the server has now (from its connector's inventory)
 *   snapshot     a consistent point in time of the source (folder source: the files as they are;
 *                live sources: one snapshot of all disks, with change tracking since the
 *                last committed run)
 *   write-image  every disk through the image store; only changed blocks are stored, and
 *                disks the source reports `changed` read only what changed, over the
 *                previous image
 *   record       retention (numberOfRecentAmisToKeep); the source's snapshot is released
 *                as committed (amiId is set on the run and job when the run completes)
 *
 * A run that fails releases its snapshot uncommitted: the source keeps the changes for
 * the next run (executor.ts).
 */
import type { Connector, SourceSnapshot } from '../../connectors/index.js';
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
  /** Live sources: the point in time the source holds for this run (released at the end). */
  readonly source?: SourceSnapshot;
  /** The image that `changed` disks read their unchanged ranges from. */
  readonly baseImageId?: string;
  /** Bytes read from the source (less than the disks' size on incremental runs). */
  readonly bytesRead?: number;
}

/** What the last committed run of the job left: its image and the source's checkpoint. */
export interface PreviousRun {
  readonly amiId: string;
  readonly checkpoint: Checkpoint;
}

export interface StepContext {
  readonly run: RunRecord;
  readonly job: JobRecord & { readonly server: JobServerSnapshot };
  readonly checkpoint: Checkpoint;
  readonly connector: Connector;
  readonly store: Repository;
  readonly signal: AbortSignal;
  /** The job's last completed run, if any. */
  previous(): Promise<PreviousRun | undefined>;
  /** Reports copy progress (persisted, throttled, by the executor). */
  progress(p: RunProgress): void;
  /** Images retention must keep: pinned by an app's launch options or booted by a live instance. */
  imagesInUse(): Promise<ReadonlySet<string>>;
}

export interface Step {
  readonly name: StepName;
  /** ReplicationRunStageDetails.stage while the step runs. */
  readonly stage: string;
  /** Does the step's work; returns what to merge into the checkpoint. */
  run(ctx: StepContext): Promise<Partial<Checkpoint>>;
}
