/**
 * Step 4: the image becomes visible in the API (run amiId, job latestAmiId — written by
 * the executor when it completes the run) and old images go (numberOfRecentAmisToKeep).
 */
import { applyRetention } from '../../../store/index.js';
import type { Step } from '../itinerary.js';

export const record: Step = {
  name: 'record',
  stage: 'Recording image',
  async run(ctx) {
    const keep = ctx.job.numberOfRecentAmisToKeep;
    if (keep > 0) await applyRetention(ctx.store, ctx.job.replicationJobId, keep);
    return {};
  },
};
