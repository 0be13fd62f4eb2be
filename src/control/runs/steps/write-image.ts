/**
 * Step 3: every disk through the image store, as one server image. The store stores only
 * blocks it does not have yet, so a later run of the same server writes only what
 * changed. The image is listed only once committed: a crash leaves an interrupted write,
 * which the re-run of this step finds (by run id) and resumes.
 */
import { isStored, type Disk } from '../../../disk/index.js';
import { InternalError } from '../../../errors/index.js';
import { listIncomplete, openImageDisk, writeImage, type ChunkIndex } from '../../../store/index.js';
import type { Step } from '../itinerary.js';

export const writeImageStep: Step = {
  name: 'write-image',
  stage: 'Writing image',
  async run(ctx) {
    const disks = ctx.checkpoint.disks;
    if (!disks) throw new InternalError('write-image before prepare');
    const total = disks.reduce((s, d) => s + d.virtualSize, 0);
    const interrupted = (await listIncomplete(ctx.store)).find(
      (w) => w.meta?.run === ctx.run.replicationRunId,
    );
    const opened: { name: string; disk: Disk; base?: { image: string; disk: number; depth: number } }[] = [];
    const snap = ctx.checkpoint.source;
    const baseId = ctx.checkpoint.baseImageId;
    // Loaded once, under the first base view's read lock, which is held until the write
    // returns (the disks close after it): every base disk and the write share it.
    let index: ChunkIndex | undefined;
    try {
      for (const d of disks) {
        const changed = snap?.disks.find((x) => x.index === d.index)?.mode === 'changed';
        // A changed disk reads only what changed; the rest comes from the previous image,
        // whose layer the opened disk then owns (and closes).
        const view =
          changed && baseId
            ? await openImageDisk(ctx.store, baseId, d.index, index ? { index } : {})
            : undefined;
        index ??= view?.index;
        const base = view?.layer;
        const disk = await ctx.connector.source
          .openDisk(ctx.job.server.vmId, d.index, snap, base)
          .catch(async (err: unknown) => {
            await base?.close().catch(() => {});
            throw err;
          });
        // The previous image is layer 1 under the changed-blocks view: the store reuses its
        // blocks wherever nothing changed, without reading them.
        opened.push({
          name: d.name,
          disk,
          ...(base && baseId ? { base: { image: baseId, disk: d.index, depth: 1 } } : {}),
        });
      }
      let bytesRead = 0;
      for (const [i, o] of opened.entries()) {
        const changed = snap?.disks.find((x) => x.index === disks[i]?.index)?.mode === 'changed';
        bytesRead += await sourceBytes(o.disk, changed, ctx.signal);
      }
      const started = Date.now();
      const image = await writeImage(ctx.store, {
        name: ctx.job.server.vmName,
        description: ctx.run.description ?? ctx.job.description ?? '',
        job: ctx.job.replicationJobId,
        sourceServer: ctx.job.serverId,
        run: ctx.run.replicationRunId,
        disks: opened,
        ...(interrupted ? { resume: interrupted.id } : {}),
        ...(index ? { index } : {}),
        signal: ctx.signal,
        progress: {
          update(p) {
            const seconds = (Date.now() - started) / 1000;
            const rate = seconds > 0 ? p.done / seconds : 0;
            ctx.progress({
              bytesDone: p.done,
              bytesTotal: total,
              bytesPerSecond: Math.round(rate),
              ...(rate > 0 ? { etaSeconds: Math.round((total - p.done) / rate) } : {}),
            });
          },
        },
      });
      return {
        imageId: image.id,
        bytesRead,
        virtualBytes: total,
        newBytes: image.disks.reduce((s, d) => s + d.stats.newBytes, 0),
      };
    } finally {
      await Promise.allSettled(opened.map((o) => o.disk.close()));
    }
  },
};

/**
 * Bytes the run reads from the source: every stored range, except that a changed disk's
 * unchanged ranges come from the previous image (the layers below its top one).
 */
async function sourceBytes(disk: Disk, changed: boolean, signal: AbortSignal): Promise<number> {
  let n = 0;
  for await (const e of disk.map()) {
    signal.throwIfAborted();
    if (isStored(e.kind) && (!changed || e.depth === 0)) n += e.length;
  }
  return n;
}
