/**
 * Step 2: a point in time of the source. The folder source reads its files in place (a
 * VM export is at rest), so the snapshot is the moment the run read them; sources with
 * real snapshots (KVM dirty bitmaps, VMware CBT) take one here.
 */
import type { Step } from '../itinerary.js';

export const snapshot: Step = {
  name: 'snapshot',
  stage: 'Snapshotting',
  async run(ctx) {
    return { snapshotAt: ctx.checkpoint.snapshotAt ?? Date.now() };
  },
};
