/**
 * Step 2: a point in time of the source. The folder source reads its files in place (a
 * VM export is at rest), so the snapshot is the moment the run read them. Live sources
 * (KVM: fleecing + dirty bitmaps) take one snapshot of every disk at once, tracking
 * changes since the last committed run when its image is still there to build on.
 */
import { getImage } from '../../../store/index.js';
import type { Checkpoint, Step, StepContext } from '../itinerary.js';

export const snapshot: Step = {
  name: 'snapshot',
  stage: 'Snapshotting',
  async run(ctx) {
    const source = ctx.connector.source;
    if (!source.snapshot) return { snapshotAt: ctx.checkpoint.snapshotAt ?? Date.now() };
    const base = await usableBase(ctx);
    const snap = await source.snapshot(ctx.job.server.vmId, {
      runId: ctx.run.replicationRunId,
      ...(base?.since ? { since: base.since } : {}),
      signal: ctx.signal,
    });
    const changed = snap.disks.some((d) => d.mode === 'changed');
    return {
      snapshotAt: snap.takenAt,
      source: snap,
      ...(changed && base ? { baseImageId: base.imageId } : {}),
    } satisfies Partial<Checkpoint>;
  },
};

/**
 * The previous image and the source checkpoint taken with it, when incremental reading
 * can build on them: the image must still exist with the same disks (retention or a user
 * may have deleted it; the server may have gained a disk). Otherwise the run reads in full.
 */
async function usableBase(ctx: StepContext): Promise<{ imageId: string; since: string } | undefined> {
  const prev = await ctx.previous();
  const since = prev?.checkpoint.source?.checkpoint;
  if (!prev || !since) return undefined;
  const image = await getImage(ctx.store, prev.amiId).catch(() => undefined);
  const disks = ctx.checkpoint.disks ?? [];
  if (!image || image.disks.length !== disks.length) return undefined;
  if (image.disks.some((d, i) => d.virtualSize !== disks[i]?.virtualSize)) return undefined;
  return { imageId: prev.amiId, since };
}
