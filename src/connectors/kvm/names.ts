/**
 * Names of everything the KVM connector creates in QEMU and on disk. They derive only
 * from the run id (and the VM id for paths), so a restarted process finds, reattaches or
 * removes what an earlier one left: nothing needs to be remembered to be cleaned up.
 *
 * QEMU's rules (QEMU 7.2): ids and node names must start with a letter and contain only
 * letters, digits, '-', '.' and '_' (util/id.c id_wellformed); a node name is at most 31
 * bytes (block.c bdrv_assign_node_name, `char node_name[32]`); a bitmap name at most 1023
 * bytes (BDRV_BITMAP_MAX_NAME_SIZE). Job and export ids have no length limit.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { InvalidArgumentError } from '../../errors/index.js';

/** Everything Ferry creates in QEMU starts with this (sweep removes only such names). */
export const PREFIX = 'ferry-';
/** Longest run key kept readable in names; longer ids are cut and suffixed with a hash. */
const MAX_KEY = 48;
/** QEMU's node-name limit (31 bytes, see above). */
const MAX_NODE_NAME = 31;
/** Disks per VM this connector handles (QEMU attaches far fewer; bounds every loop). */
export const MAX_DISKS_PER_VM = 256;

const hash = (s: string, n: number) => createHash('sha256').update(s).digest('hex').slice(0, n);

/**
 * The run id as it appears in names: [A-Za-z0-9-] only. An id that needed changes (or is
 * too long) gets a hash of the original appended, so two run ids never share a key.
 */
export function runKey(runId: string): string {
  if (runId.length === 0 || runId.length > 1024) {
    throw new InvalidArgumentError('run id must be 1..1024 characters', { length: runId.length });
  }
  const clean = runId.replace(/[^A-Za-z0-9-]/g, '-');
  if (clean === runId && clean.length <= MAX_KEY) return clean;
  return `${clean.slice(0, MAX_KEY - 9)}-${hash(runId, 8)}`;
}

/** Names of one snapshot (one run) in QEMU. */
export interface SnapshotNames {
  readonly key: string;
  /** SourceSnapshot.id. */
  readonly snapshotId: string;
  /** The bitmap started at this snapshot on every disk; SourceSnapshot.checkpoint. */
  readonly bitmap: string;
  fleeceNode(i: number): string;
  exportId(i: number): string;
  jobId(i: number): string;
  /** True when `name` is this snapshot's fleecing node / export / job (any disk). */
  ownsNode(name: string): boolean;
  ownsExport(id: string): boolean;
  ownsJob(id: string): boolean;
}

export function snapshotNames(key: string): SnapshotNames {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(key)) throw new InvalidArgumentError('invalid run key', { key });
  // The fleecing node name must fit 31 bytes with "ferry-" and "-f255": 20 bytes of key.
  const nodeKey = key.length <= MAX_NODE_NAME - PREFIX.length - 5 ? key : `h${hash(key, 16)}`;
  const nodeRe = new RegExp(`^${PREFIX}${nodeKey}-f\\d+$`);
  const exportRe = new RegExp(`^${PREFIX}${key}-d\\d+$`);
  const jobRe = new RegExp(`^${PREFIX}${key}-j\\d+$`);
  return {
    key,
    snapshotId: `${PREFIX}${key}`,
    bitmap: `${PREFIX}${key}`,
    fleeceNode: (i) => `${PREFIX}${nodeKey}-f${i}`,
    exportId: (i) => `${PREFIX}${key}-d${i}`,
    jobId: (i) => `${PREFIX}${key}-j${i}`,
    ownsNode: (n) => nodeRe.test(n),
    ownsExport: (id) => exportRe.test(id),
    ownsJob: (id) => jobRe.test(id),
  };
}

/** The run key named by a snapshot id, or undefined when the id is not one of ours. */
export function keyOfSnapshotId(id: string): string | undefined {
  if (!id.startsWith(PREFIX)) return undefined;
  const key = id.slice(PREFIX.length);
  return /^[A-Za-z0-9-]{1,64}$/.test(key) ? key : undefined;
}

/** A checkpoint token (a bitmap name Ferry created), checked before it reaches QEMU. */
export function checkCheckpoint(since: string): string {
  if (keyOfSnapshotId(since) === undefined) {
    throw new InvalidArgumentError(`${since} is not a checkpoint of this connector`, { since });
  }
  return since;
}

/** The VM id as a file name (UUIDs pass unchanged). */
export function vmKey(vmId: string): string {
  const clean = vmId.replace(/[^A-Za-z0-9-]/g, '-');
  if (clean === vmId && clean.length <= MAX_KEY && clean.length > 0) return clean;
  return `${clean.slice(0, MAX_KEY - 9)}-${hash(vmId, 8)}`;
}

/**
 * Where the connector keeps a VM's state: `<stateDir>/<vm>/` holds the fleecing scratch
 * images (`<key>-<i>.qcow2`) and snapshot records (`<key>.json`); `<stateDir>/<vm>.nbd`
 * is the unix socket of the VM's NBD server.
 */
export interface VmPaths {
  readonly dir: string;
  readonly nbdSocket: string;
  scratch(key: string, i: number): string;
  record(key: string): string;
}

/** sun_path is 108 bytes on Linux, including the terminating NUL. */
export const MAX_UNIX_SOCKET_PATH = 107;

export function vmPaths(stateDir: string, vmId: string): VmPaths {
  const v = vmKey(vmId);
  const dir = join(stateDir, v);
  const nbdSocket = join(stateDir, `${v}.nbd`);
  if (Buffer.byteLength(nbdSocket) > MAX_UNIX_SOCKET_PATH) {
    throw new InvalidArgumentError(
      `NBD socket path ${nbdSocket} is longer than ${MAX_UNIX_SOCKET_PATH} bytes; use a shorter state directory`,
      { path: nbdSocket, limit: MAX_UNIX_SOCKET_PATH },
    );
  }
  return {
    dir,
    nbdSocket,
    scratch: (key, i) => join(dir, `${key}-${i}.qcow2`),
    record: (key) => join(dir, `${key}.json`),
  };
}

/** The run key of a file in a VM's state directory, or undefined when it is not Ferry's. */
export function keyOfStateFile(name: string): string | undefined {
  const m = /^([A-Za-z0-9-]{1,64}?)(?:-\d+\.qcow2|\.json|\.json\.tmp)$/.exec(name);
  return m?.[1];
}
