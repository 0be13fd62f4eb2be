/**
 * One point in time of every disk of a running VM, the way libvirt's pull-mode backup
 * takes it (QEMU docs/interop/bitmaps.rst; iotests 222 "image fleecing"):
 *
 * 1. per disk an empty qcow2 overlay whose backing is the disk's node (the fleecing node);
 * 2. ONE `transaction`: per disk, a new dirty bitmap (the next checkpoint), the `since`
 *    bitmap disabled (it now holds exactly the changes between the last committed run and
 *    this instant), and a `blockdev-backup sync=none` from the disk into its fleecing
 *    node, which copies a block into the overlay before the guest overwrites it. All of
 *    it happens at one instant for all disks;
 * 3. per disk a read-only NBD export of the fleecing node, offering the `since` bitmap
 *    (QEMU finds it through the overlay's backing chain, nbd/server.c).
 *
 * Everything is named from the run id (names.ts) and a record of the snapshot is written
 * before step 2, so a half-made snapshot is recognised and undone by a later call.
 *
 * When the VM has a guest agent channel, step 2 runs with the guest's file systems frozen
 * (guest-freeze.ts): the snapshot is then application-consistent, otherwise
 * crash-consistent, and its warnings say which and why.
 */
import {
  OperationNotPermittedError,
  ServerNotReplicableError,
  InvalidArgumentError,
} from '../../errors/index.js';
import type { SnapshotOptions, SourceSnapshot } from '../types.js';
import type { VmDisk } from './inventory.js';
import { listDisks } from './inventory.js';
import { checkCheckpoint, runKey, snapshotNames, type SnapshotNames, type VmPaths } from './names.js';
import {
  actions,
  blockExportAddNbd,
  blockdevAdd,
  nbdServerStart,
  queryBlockExports,
  queryJobs,
  transaction,
  type QmpClient,
  type TransactionAction,
} from './qmp/index.js';
import { thawAbandoned, withGuestFrozen, type FreezeOptions } from './guest-freeze.js';
import { isRefused } from './session.js';
import {
  createScratch,
  ensureVmDir,
  exists,
  readRecord,
  removeFiles,
  toSnapshot,
  writeRecord,
  type RecordDisk,
  type SnapshotRecord,
} from './state.js';
import { bitmapsByNode, ownedBy, removeArtifacts, removeBitmap, settleBitmaps } from './teardown.js';

/** Whether a disk can be read as `changed` since `since`, and if not, why (the rescan reason). */
export function changeTracking(
  d: VmDisk,
  since: string | undefined,
): { mode: 'full' | 'changed'; rescan?: string } {
  if (since === undefined) return { mode: 'full' };
  const b = d.bitmaps.find((x) => x.name === since);
  const full = (why: string) => ({ mode: 'full' as const, rescan: `disk ${d.name}: ${why}` });
  if (!b) {
    return full(
      d.persistentBitmaps
        ? `no change-tracking bitmap ${since} (a new or replaced disk, or the bitmap was removed)`
        : `no change-tracking bitmap ${since} (a ${d.format} disk loses it when the VM restarts; or the disk is new)`,
    );
  }
  if (b.inconsistent) return full(`bitmap ${since} is inconsistent (QEMU stopped without saving it)`);
  if (b.busy) return full(`bitmap ${since} is in use by another block job or export`);
  if (!b.recording) {
    return full(`bitmap ${since} is not recording (an earlier snapshot was not released while the VM ran)`);
  }
  return { mode: 'changed' };
}

/** True when every export and fleecing job of a finished snapshot is still in QEMU and healthy. */
async function intact(q: QmpClient, names: SnapshotNames, r: SnapshotRecord): Promise<boolean> {
  const exps = await queryBlockExports(q);
  const jobs = await queryJobs(q);
  return r.disks.every(
    (d) =>
      exps.some((e) => e.id === names.exportId(d.index) && !e['shutting-down']) &&
      jobs.some((j) => j.id === names.jobId(d.index) && (j.status === 'running' || j.status === 'paused')),
  );
}

/**
 * Undoes whatever exists of snapshot `names` as an uncommitted release would. A snapshot
 * whose record says it froze the guest but never got ready may have died (with its
 * process) between freeze and thaw: the guest is thawed, through `agent`.
 */
export async function undo(
  q: QmpClient,
  paths: VmPaths,
  names: SnapshotNames,
  agent?: string,
  log?: FreezeOptions['log'],
): Promise<void> {
  const record = await readRecord(paths, names.key);
  if (record?.guestFrozen && record.state === 'preparing' && agent) await thawAbandoned(agent, log);
  const found = await removeArtifacts(q, ownedBy(names));
  if (record || found) await settleBitmaps(q, names, record, false);
  await removeFiles(paths, names.key);
}

/** Starts the VM's NBD server on our socket; one already running is ours if our socket exists. */
async function ensureNbdServer(q: QmpClient, paths: VmPaths): Promise<void> {
  try {
    await nbdServerStart(q, { type: 'unix', path: paths.nbdSocket });
  } catch (err) {
    if (!isRefused(err) || !/already running/i.test(String(err.details.desc))) throw err;
    if (!(await exists(paths.nbdSocket))) {
      throw new OperationNotPermittedError(
        `QEMU already runs an NBD server that Ferry did not start (not at ${paths.nbdSocket}); stop it (nbd-server-stop) or let its backup finish`,
        { socket: paths.nbdSocket },
      );
    }
  }
}

/** How the snapshot reaches the guest: its agent channel and the freeze's bounds. */
export interface GuestOptions extends Omit<FreezeOptions, 'beforeFreeze'> {
  /** The guest agent channel (guestAgentPath of the QMP socket); it need not exist. */
  readonly agent: string;
}

export async function takeSnapshot(
  q: QmpClient,
  paths: VmPaths,
  vmId: string,
  options: SnapshotOptions,
  guest: GuestOptions,
): Promise<SourceSnapshot> {
  const names = snapshotNames(runKey(options.runId));
  const since = options.since === undefined ? undefined : checkCheckpoint(options.since);
  if (since === names.bitmap) {
    throw new InvalidArgumentError('a snapshot cannot be taken since its own checkpoint', { since });
  }
  const signal = options.signal;

  const existing = await readRecord(paths, names.key);
  if (existing?.state === 'ready' && existing.since === since && (await intact(q, names, existing))) {
    return toSnapshot(existing);
  }
  await undo(q, paths, names, guest.agent, guest.log);
  // A bitmap of this run without a record (state directory lost) would fail bitmap-add.
  for (const [node, list] of await bitmapsByNode(q)) {
    if (list.some((b) => b.name === names.bitmap)) await removeBitmap(q, node, names.bitmap);
  }
  signal?.throwIfAborted();

  const vmDisks = await listDisks(q);
  if (vmDisks.length === 0) {
    throw new ServerNotReplicableError(`VM ${vmId} has no disk to snapshot`, { vmId });
  }
  const disks: RecordDisk[] = vmDisks.map((d) => ({
    index: d.index,
    virtualSize: d.virtualSize,
    node: d.node,
    ...changeTracking(d, since),
  }));
  const record: SnapshotRecord = {
    version: 1,
    runId: options.runId,
    key: names.key,
    vmId,
    ...(since ? { since } : {}),
    state: 'preparing',
    takenAt: Date.now(),
    checkpoint: names.bitmap,
    disks,
    warnings: [],
  };
  await ensureVmDir(paths);
  await writeRecord(paths, record);
  try {
    await ensureNbdServer(q, paths);
    for (const d of vmDisks) {
      signal?.throwIfAborted();
      const scratch = paths.scratch(names.key, d.index);
      await createScratch(scratch, d.virtualSize);
      await blockdevAdd(q, {
        driver: 'qcow2',
        'node-name': names.fleeceNode(d.index),
        file: { driver: 'file', filename: scratch },
        backing: d.node,
      });
    }
    signal?.throwIfAborted();
    const list: TransactionAction[] = [];
    for (const d of vmDisks) {
      list.push(
        actions.bitmapAdd({ node: d.node, name: names.bitmap, persistent: d.persistentBitmaps }),
        ...(since && disks[d.index]?.mode === 'changed'
          ? [actions.bitmapDisable({ node: d.node, name: since })]
          : []),
        actions.blockdevBackup({
          'job-id': names.jobId(d.index),
          device: d.node,
          target: names.fleeceNode(d.index),
          sync: 'none',
          'auto-dismiss': false,
        }),
      );
    }
    const { agent, ...bounds } = guest;
    // The guest's file systems are frozen for the transaction only (milliseconds); the
    // record says so first, so a process that dies in between gets the guest thawed.
    const frozen = await withGuestFrozen(
      agent,
      async () => {
        const at = Date.now();
        await transaction(q, list);
        return at;
      },
      { ...bounds, beforeFreeze: () => writeRecord(paths, { ...record, guestFrozen: true }) },
    );
    const takenAt = frozen.value;
    for (const d of disks) {
      await blockExportAddNbd(q, {
        id: names.exportId(d.index),
        'node-name': names.fleeceNode(d.index),
        name: names.exportId(d.index),
        writable: false,
        ...(d.mode === 'changed' && since ? { bitmaps: [since] } : {}),
      });
    }
    const ready: SnapshotRecord = { ...record, state: 'ready', takenAt, warnings: frozen.warnings };
    await writeRecord(paths, ready);
    return toSnapshot(ready);
  } catch (err) {
    await undo(q, paths, names, guest.agent, guest.log).catch(() => {});
    throw err;
  }
}
