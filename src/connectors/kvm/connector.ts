/**
 * The KVM/QEMU source: every `*.qmp` unix socket in a directory is one running VM.
 * Ferry reads it agentlessly: QMP to describe it and to take point-in-time snapshots of
 * all its disks (fleecing + dirty bitmaps, snapshot.ts), NBD to read them (nbd-layer.ts).
 * See docs/connectors/kvm.md.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { LayeredDisk, type Disk, type DiskLayer } from '../../disk/index.js';
import {
  FerryError,
  InvalidArgumentError,
  NotFoundError,
  OperationNotPermittedError,
  toFerryError,
} from '../../errors/index.js';
import type {
  Connector,
  ConnectorDescriptor,
  InventoryServer,
  SnapshotOptions,
  SourceSnapshot,
} from '../types.js';
import { guestAgentPath } from './guest-agent.js';
import { thawAbandoned } from './guest-freeze.js';
import { describeVm, readVmId } from './inventory.js';
import { keyOfSnapshotId, PREFIX, snapshotNames, vmPaths, type VmPaths } from './names.js';
import { CONTEXT_BASE_ALLOCATION, NbdClient, dirtyBitmapContext } from './nbd/index.js';
import { NbdLayer } from './nbd-layer.js';
import type { QmpClient } from './qmp/index.js';
import { queryBlockExports, queryJobs, queryNamedBlockNodes } from './qmp/index.js';
import { DEFAULT_QMP_SESSION_TIMEOUT_MS, isGone, withQmp } from './session.js';
import { takeSnapshot, undo } from './snapshot.js';
import { keysWithFiles, readRecord, removeFiles, unlinkIfExists } from './state.js';
import {
  bitmapsByNode,
  ownedBy,
  removeArtifacts,
  removeBitmap,
  settleBitmaps,
  stopNbdServerIfIdle,
} from './teardown.js';

/** More sockets than this in one directory is the wrong directory, not a host. */
export const MAX_VMS_PER_QMP_DIR = 4096;

export interface KvmLog {
  warn(obj: object, msg: string): void;
}

export interface KvmConnectorOptions {
  readonly connectorId: string;
  readonly version: string;
  /** Directory of the VMs' QMP sockets (`-qmp unix:DIR/NAME.qmp,server=on,wait=off`). */
  readonly qmpDir: string;
  /** Where the connector keeps NBD sockets and fleecing scratch images (created 0700). */
  readonly stateDir: string;
  /** Wait for QEMU's QMP greeting per connect attempt (default 5 s; 3 attempts). */
  readonly qmpTimeoutMs?: number;
  /**
   * How long the guest agent (`NAME.qga` next to `NAME.qmp`) may take to freeze the
   * guest's file systems before the snapshot goes on crash-consistent (default 10 s).
   */
  readonly freezeTimeoutMs?: number;
  readonly log?: KvmLog;
}

const GONE = Symbol('gone');
const MISMATCH = Symbol('mismatch');

export async function createKvmConnector(options: KvmConnectorOptions): Promise<Connector> {
  let root: string;
  try {
    root = await realpath(options.qmpDir);
  } catch (err) {
    throw new InvalidArgumentError(
      `QMP socket directory ${options.qmpDir} is not accessible: ${toFerryError(err).message}`,
      { path: options.qmpDir },
    );
  }
  let stateDir: string;
  try {
    await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
    stateDir = await realpath(options.stateDir);
  } catch (err) {
    throw new InvalidArgumentError(
      `state directory ${options.stateDir} cannot be created: ${toFerryError(err).message}`,
      { path: options.stateDir },
    );
  }
  const session = { connectTimeoutMs: options.qmpTimeoutMs ?? DEFAULT_QMP_SESSION_TIMEOUT_MS };
  const descriptor: ConnectorDescriptor = Object.freeze({
    connectorId: options.connectorId,
    kind: 'local',
    version: options.version,
    // SMS has no KVM manager type and none of its capabilities describe this source.
    capabilities: Object.freeze([]),
    vmManagerId: `kvm-${createHash('sha256').update(root).digest('hex').slice(0, 12)}`,
    vmManagerName: `kvm:${root}`,
  });
  /** vmId → its QMP socket, as last seen (checked on every use: sockets get reused). */
  const located = new Map<string, string>();

  const sockets = async (): Promise<string[]> => {
    const names = (await readdir(root).catch((err: unknown) => Promise.reject(toFerryError(err))))
      .filter((n) => n.endsWith('.qmp'))
      .sort();
    if (names.length > MAX_VMS_PER_QMP_DIR) {
      throw new InvalidArgumentError(`${root} has more than ${MAX_VMS_PER_QMP_DIR} QMP sockets`, {
        limit: MAX_VMS_PER_QMP_DIR,
      });
    }
    const out: string[] = [];
    for (const n of names) {
      const p = join(root, n);
      if ((await lstat(p).catch(() => undefined))?.isSocket()) out.push(p);
    }
    return out;
  };

  /**
   * Runs `fn` in a QMP session with VM `vmId`: its last known socket first, then every
   * socket. GONE when no QEMU answers as that VM; a socket that timed out (its monitor
   * held by another client) makes that unknowable, so its error is thrown instead.
   */
  const withVm = async <T>(
    vmId: string,
    fn: (q: QmpClient, paths: VmPaths, socket: string) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T | typeof GONE> => {
    const paths = vmPaths(stateDir, vmId);
    const known = located.get(vmId);
    const candidates = known ? [known, ...(await sockets()).filter((s) => s !== known)] : await sockets();
    let unreachable: unknown;
    for (const path of candidates) {
      let r: { v: T } | typeof MISMATCH;
      try {
        r = await withQmp(path, { ...session, ...(signal ? { signal } : {}) }, async (q) => {
          if ((await readVmId(q, path)) !== vmId) return MISMATCH;
          located.set(vmId, path);
          return { v: await fn(q, paths, path) };
        });
      } catch (err) {
        if (!isSessionFailure(err)) throw err;
        if (!isGone(err)) unreachable ??= err;
        continue;
      }
      if (r !== MISMATCH) return r.v;
    }
    located.delete(vmId);
    if (unreachable) throw unreachable;
    return GONE;
  };

  const notFound = (vmId: string) =>
    new NotFoundError(`no running VM ${vmId} in ${root}`, { resource: 'server', vmId });

  return {
    descriptor,
    inventory: {
      async collect(signal?: AbortSignal): Promise<InventoryServer[]> {
        const out: InventoryServer[] = [];
        for (const path of await sockets()) {
          signal?.throwIfAborted();
          try {
            const s = await withQmp(path, { ...session, ...(signal ? { signal } : {}) }, (q) =>
              describeVm(q, path),
            );
            if (out.some((o) => o.vmId === s.vmId)) {
              options.log?.warn({ socket: path, vmId: s.vmId }, 'two QMP sockets name the same VM; skipped');
              continue;
            }
            located.set(s.vmId, path);
            out.push(s);
          } catch (err) {
            if (!isSessionFailure(err)) throw err;
            options.log?.warn({ socket: path, err: toFerryError(err).toJSON() }, 'QMP socket skipped');
          }
        }
        return out;
      },
    },
    source: {
      async openDisk(
        vmId: string,
        index: number,
        snapshot?: SourceSnapshot,
        base?: DiskLayer,
      ): Promise<Disk> {
        if (!snapshot) {
          // A running VM's disk changes under the reader: only a point in time is readable.
          throw new OperationNotPermittedError(
            `disk ${index} of running VM ${vmId} can be read only from a snapshot`,
            { vmId, index, reason: 'snapshot-required' },
          );
        }
        const key = keyOfSnapshotId(snapshot.id);
        const sd = snapshot.disks.find((d) => d.index === index);
        if (key === undefined || !sd) {
          throw new NotFoundError(`snapshot ${snapshot.id} of VM ${vmId} has no disk ${index}`, {
            resource: 'disk',
            vmId,
            index,
          });
        }
        const paths = vmPaths(stateDir, vmId);
        const names = snapshotNames(key);
        // Changed-only reading needs the checkpoint the export offers (in the record) and
        // the previous image below; without either, the disk is read in full (still exact).
        const since = sd.mode === 'changed' && base ? (await readRecord(paths, key))?.since : undefined;
        const client = await NbdClient.connect(
          { path: paths.nbdSocket },
          {
            exportName: names.exportId(index),
            metaContexts: [CONTEXT_BASE_ALLOCATION, ...(since ? [dirtyBitmapContext(since)] : [])],
          },
        );
        if (client.size !== sd.virtualSize) {
          await client.close();
          throw new InvalidArgumentError(
            `export ${names.exportId(index)} is ${client.size} bytes, the snapshot says ${sd.virtualSize}`,
            { vmId, index, size: client.size, virtualSize: sd.virtualSize },
          );
        }
        const layer = new NbdLayer(client, since);
        const name = `nbd:${paths.nbdSocket}/${names.exportId(index)}`;
        if (since && base) return new LayeredDisk([layer, base], [name, 'base']);
        await base?.close();
        return new LayeredDisk([layer], [name]);
      },

      async snapshot(vmId: string, opts: SnapshotOptions): Promise<SourceSnapshot> {
        const r = await withVm(
          vmId,
          (q, paths, socket) =>
            takeSnapshot(q, paths, vmId, opts, {
              agent: guestAgentPath(socket),
              ...(options.freezeTimeoutMs !== undefined ? { freezeTimeoutMs: options.freezeTimeoutMs } : {}),
              ...(options.log ? { log: options.log } : {}),
            }),
          opts.signal,
        );
        if (r === GONE) throw notFound(vmId);
        return r;
      },

      async release(vmId: string, snapshotId: string, committed: boolean): Promise<void> {
        const key = keyOfSnapshotId(snapshotId);
        if (key === undefined) return;
        const names = snapshotNames(key);
        const paths = vmPaths(stateDir, vmId);
        // When QEMU is gone (VM shut down or killed) its exports, jobs and nodes went with
        // it: only the local files are left to remove, and the NBD socket it listened on.
        const r = await withVm(vmId, async (q, _paths, socket) => {
          const record = await readRecord(paths, key);
          // Its process died between the guest's freeze and thaw: thaw it now.
          if (record?.guestFrozen && record.state === 'preparing') {
            await thawAbandoned(guestAgentPath(socket), options.log);
          }
          const found = await removeArtifacts(q, ownedBy(names));
          if (record || found) await settleBitmaps(q, names, record, committed);
          await stopNbdServerIfIdle(q, paths);
        });
        if (r === GONE) await unlinkIfExists(paths.nbdSocket);
        await removeFiles(paths, key);
      },

      async sweep(vmId, keep): Promise<void> {
        const keepKeys = new Set(keep.snapshots.map(keyOfSnapshotId).filter((k) => k !== undefined));
        const kept = [...keepKeys].map(snapshotNames);
        const paths = vmPaths(stateDir, vmId);
        const stale = [...(await keysWithFiles(paths))].filter((k) => !keepKeys.has(k));
        await withVm(vmId, async (q, _paths, socket) => {
          // Abandoned snapshots with a record: undone properly, so their `since` records again.
          for (const k of stale) await undo(q, paths, snapshotNames(k), guestAgentPath(socket), options.log);
          // Then anything else of ours that no kept snapshot owns.
          const foreign = (id: string, owns: (n: (typeof kept)[number]) => (id: string) => boolean) =>
            id.startsWith(PREFIX) && !kept.some((n) => owns(n)(id));
          await removeArtifacts(q, {
            export: (id) => foreign(id, (n) => n.ownsExport),
            job: (id) => foreign(id, (n) => n.ownsJob),
            node: (id) => foreign(id, (n) => n.ownsNode),
          });
          const keepBitmaps = new Set<string>([...keep.checkpoints, ...kept.map((n) => n.bitmap)]);
          for (const n of kept) {
            const since = (await readRecord(paths, n.key))?.since;
            if (since) keepBitmaps.add(since);
          }
          for (const [node, list] of await bitmapsByNode(q)) {
            for (const b of list) {
              // A busy bitmap is exported or used by a job that is not ours to end.
              if (b.name?.startsWith(PREFIX) && !keepBitmaps.has(b.name) && !b.busy) {
                await removeBitmap(q, node, b.name);
              }
            }
          }
          await stopNbdServerIfIdle(q, paths);
        });
        for (const k of stale) await removeFiles(paths, k);
      },
    },
  };
}

/** Errors that mean "this socket's QEMU could not be talked to", as opposed to a bug or refusal. */
function isSessionFailure(err: unknown): boolean {
  return (
    FerryError.is(err) &&
    ['FERRY_QMP_DISCONNECTED', 'FERRY_QMP_TIMEOUT', 'FERRY_QMP_PROTOCOL_ERROR'].includes(err.code)
  );
}

/** For tests and operators: what Ferry left in a VM (exports, jobs, nodes, bitmaps named ferry-*). */
export async function ferryLeftovers(q: QmpClient): Promise<{
  exports: string[];
  jobs: string[];
  nodes: string[];
  bitmaps: string[];
}> {
  const nodes = await queryNamedBlockNodes(q);
  return {
    exports: (await queryBlockExports(q)).map((e) => e.id).filter((id) => id.startsWith(PREFIX)),
    jobs: (await queryJobs(q)).map((j) => j.id).filter((id) => id.startsWith(PREFIX)),
    nodes: nodes.map((n) => n['node-name'] ?? '').filter((n) => n.startsWith(PREFIX)),
    bitmaps: [...(await bitmapsByNode(q)).entries()].flatMap(([node, list]) =>
      list.filter((b) => b.name?.startsWith(PREFIX)).map((b) => `${node}:${b.name}`),
    ),
  };
}
