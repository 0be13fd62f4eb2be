/**
 * Taking a snapshot apart, in the only order QEMU accepts (libvirt's backup teardown does
 * the same): NBD exports first (they hold the fleecing node and mark the exported bitmap
 * busy), then the fleecing jobs (cancel, wait until concluded, dismiss), then the
 * fleecing nodes (blockdev-del fails while the export or job still references them), and
 * the bitmaps last. Every step looks at what exists first, so running it again, or on a
 * half-made snapshot, does what is left and nothing else.
 */
import { QmpTimeoutError } from '../../errors/index.js';
import type { SnapshotNames, VmPaths } from './names.js';
import {
  actions,
  blockDirtyBitmapRemove,
  blockExportDel,
  blockdevDel,
  jobCancel,
  jobDismiss,
  nbdServerStop,
  queryBlockExports,
  queryJobs,
  queryNamedBlockNodes,
  transaction,
  type QmpClient,
  type QmpDirtyBitmapInfo,
} from './qmp/index.js';
import { isRefused, pollUntil, sleep } from './session.js';
import { exists, unlinkIfExists, type SnapshotRecord } from './state.js';

/**
 * How long QEMU gets to finish an asynchronous teardown step: an export closing its
 * clients, a cancelled fleecing job draining in-flight copy-before-write requests. Both
 * take milliseconds; ten seconds means something holds them (a reader still connected).
 */
const SETTLE_MS = 10_000;

/** Which exports, jobs and nodes a teardown removes. */
export interface Owned {
  export(id: string): boolean;
  job(id: string): boolean;
  node(name: string): boolean;
}

export const ownedBy = (n: SnapshotNames): Owned => ({
  export: n.ownsExport,
  job: n.ownsJob,
  node: n.ownsNode,
});

/**
 * Removes the exports, jobs and fleecing nodes `owned` selects; returns whether any
 * existed (a snapshot that left nothing in QEMU was released already, or never made).
 */
export async function removeArtifacts(q: QmpClient, owned: Owned): Promise<boolean> {
  const exportsOf = async () => (await queryBlockExports(q)).filter((e) => owned.export(e.id));
  const exps = await exportsOf();
  for (const e of exps) {
    // 'hard' disconnects readers: the snapshot is over, a reader left behind must not pin it.
    if (!e['shutting-down']) await blockExportDel(q, e.id, 'hard').catch(ignoreRefused);
  }
  if (exps.length > 0 && !(await pollUntil(async () => (await exportsOf()).length === 0, SETTLE_MS))) {
    throw new QmpTimeoutError(`NBD exports did not close within ${SETTLE_MS} ms`, { timeoutMs: SETTLE_MS });
  }

  const jobsOf = async () => (await queryJobs(q)).filter((j) => owned.job(j.id));
  const jobs = await jobsOf();
  for (const j of jobs) {
    if (!['concluded', 'null', 'aborting'].includes(j.status)) await jobCancel(q, j.id).catch(ignoreRefused);
  }
  if (
    jobs.length > 0 &&
    !(await pollUntil(
      async () => (await jobsOf()).every((j) => j.status === 'concluded' || j.status === 'null'),
      SETTLE_MS,
    ))
  ) {
    throw new QmpTimeoutError(`fleecing jobs did not stop within ${SETTLE_MS} ms`, { timeoutMs: SETTLE_MS });
  }
  for (const j of await jobsOf())
    if (j.status === 'concluded') await jobDismiss(q, j.id).catch(ignoreRefused);

  const nodes = (await queryNamedBlockNodes(q)).filter((n) => n['node-name'] && owned.node(n['node-name']));
  for (const n of nodes) await deleteNode(q, n['node-name'] as string);
  return exps.length + jobs.length + nodes.length > 0;
}

/** blockdev-del, retried: a node is still referenced for a moment after its export and job go. */
async function deleteNode(q: QmpClient, name: string): Promise<void> {
  const deadline = Date.now() + SETTLE_MS;
  for (;;) {
    try {
      await blockdevDel(q, name);
      return;
    } catch (err) {
      if (!isRefused(err)) throw err;
      const still = (await queryNamedBlockNodes(q)).some((n) => n['node-name'] === name);
      if (!still) return;
      if (Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

/** Bitmaps by node name. */
export async function bitmapsByNode(q: QmpClient): Promise<Map<string, readonly QmpDirtyBitmapInfo[]>> {
  const out = new Map<string, readonly QmpDirtyBitmapInfo[]>();
  for (const n of await queryNamedBlockNodes(q)) {
    if (n['node-name']) out.set(n['node-name'], n['dirty-bitmaps'] ?? []);
  }
  return out;
}

/**
 * Moves change tracking on after a snapshot's exports, jobs and nodes are gone.
 *
 * - committed: the `since` bitmap is removed; the snapshot's own bitmap, recording since
 *   the snapshot, is the checkpoint from now on.
 * - not committed: on each disk read as `changed`, the snapshot's bitmap is merged into
 *   `since` and `since` re-enabled in one transaction (no write can fall between the two),
 *   then the snapshot's bitmap is removed: `since` again covers every change since the
 *   last committed run. On disks read in full, `since` was not touched (it was missing or
 *   unusable), so only the snapshot's bitmap goes.
 *
 * Without a record (the state directory was lost) only the snapshot's own bitmap can be
 * identified, and only when uncommitted is it removed; a `since` left disabled is then
 * seen as "not recording" by the next snapshot, which reads in full (safe, not clever).
 */
export async function settleBitmaps(
  q: QmpClient,
  names: SnapshotNames,
  record: SnapshotRecord | undefined,
  committed: boolean,
): Promise<void> {
  const byNode = await bitmapsByNode(q);
  const find = (node: string, name: string) => byNode.get(node)?.find((b) => b.name === name);
  if (!record) {
    if (committed) return;
    for (const [node, list] of byNode) {
      if (list.some((b) => b.name === names.bitmap)) await removeBitmap(q, node, names.bitmap);
    }
    return;
  }
  const since = record.since;
  for (const d of record.disks) {
    if (committed) {
      if (since && since !== names.bitmap && find(d.node, since)) await removeBitmap(q, d.node, since);
      continue;
    }
    if (!find(d.node, names.bitmap)) continue;
    const target = since ? find(d.node, since) : undefined;
    if (d.mode === 'changed' && since && target && !target.inconsistent) {
      await transaction(q, [
        actions.bitmapMerge({ node: d.node, target: since, bitmaps: [names.bitmap] }),
        actions.bitmapEnable({ node: d.node, name: since }),
      ]);
    }
    await removeBitmap(q, d.node, names.bitmap);
  }
}

export async function removeBitmap(q: QmpClient, node: string, name: string): Promise<void> {
  await blockDirtyBitmapRemove(q, { node, name }).catch(async (err: unknown) => {
    // Gone already (a concurrent teardown, the node was removed): nothing to do.
    if (isRefused(err) && !(await bitmapsByNode(q)).get(node)?.some((b) => b.name === name)) return;
    throw err;
  });
}

/**
 * Stops the VM's NBD server when Ferry started it (its socket is at our path) and no
 * export is left on it; a server someone else runs for their own exports stays.
 */
export async function stopNbdServerIfIdle(q: QmpClient, paths: VmPaths): Promise<void> {
  if (!(await exists(paths.nbdSocket))) return;
  if ((await queryBlockExports(q)).length > 0) return;
  await nbdServerStop(q).catch(ignoreRefused);
  await unlinkIfExists(paths.nbdSocket);
}

/** Swallows QEMU refusing a command (the thing is already gone or going); rethrows the rest. */
function ignoreRefused(err: unknown): void {
  if (!isRefused(err)) throw err;
}
