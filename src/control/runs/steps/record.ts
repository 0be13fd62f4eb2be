/**
 * Step 4: the image becomes visible in the API (run amiId, job latestAmiId — written by
 * the executor when it completes the run) and old images go (numberOfRecentAmisToKeep) —
 * except images an app pins or a live instance boots from.
 * A live source's snapshot is released as committed; a crash after that re-runs the step,
 * and releasing twice is a no-op.
 */
import { applyRetention } from '../../../store/index.js';
import type { Step } from '../itinerary.js';

export const record: Step = {
  name: 'record',
  stage: 'Recording image',
  async run(ctx) {
    const keep = ctx.job.numberOfRecentAmisToKeep;
    if (keep > 0) await applyRetention(ctx.store, ctx.job.replicationJobId, keep, await ctx.imagesInUse());
    const snap = ctx.checkpoint.source;
    const source = ctx.connector.source;
    if (snap) {
      // The image is committed: change tracking moves on to this snapshot's checkpoint,
      // and anything older the source still holds for this server goes.
      await source.release?.(ctx.job.server.vmId, snap.id, true);
      await source.sweep?.(ctx.job.server.vmId, {
        snapshots: [],
        checkpoints: snap.checkpoint ? [snap.checkpoint] : [],
      });
    }
    return {};
  },
};
