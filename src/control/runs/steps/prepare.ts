/** Step 1: the disks the server has now, as its connector reports them. */
import { ServerNotReplicableError } from '../../../errors/index.js';
import type { Step } from '../itinerary.js';

export const prepare: Step = {
  name: 'prepare',
  stage: 'Preparing',
  async run(ctx) {
    const vmId = ctx.job.server.vmId;
    const inventory = await ctx.connector.inventory.collect(ctx.signal);
    const server = inventory.find((s) => s.vmId === vmId);
    if (!server) {
      throw new ServerNotReplicableError(
        `the source no longer has server ${vmId} (${ctx.job.server.vmPath ?? 'unknown path'}); restore it or delete the job`,
        { vmId },
      );
    }
    if (server.facts.disks.length === 0) {
      throw new ServerNotReplicableError(
        `server ${vmId} has no readable disks: ${server.facts.warnings.join('; ')}`,
        { vmId },
      );
    }
    return {
      disks: server.facts.disks.map((d, index) => ({ index, name: d.name, virtualSize: d.virtualSize })),
    };
  },
};
