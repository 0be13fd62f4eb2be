/**
 * Typed QMP queries the KVM connector needs to describe a VM. Field names are QEMU's
 * (QAPI schema, qapi/*.json of QEMU 7.2, stable across 5.2 … 9.x for the fields used
 * here), so the types read like the QEMU documentation. Each helper checks the shape it
 * relies on and throws FERRY_QMP_PROTOCOL_ERROR when QEMU answers something else.
 */
import { QmpProtocolError } from '../../../errors/index.js';
import type { QmpClient } from './client.js';

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks that `value` is an array of objects each having `field` of type `kind`. */
function expectList<T>(command: string, value: unknown, field: string, kind: 'string' | 'number'): T[] {
  if (!Array.isArray(value) || !value.every((x) => isObj(x) && typeof x[field] === kind)) {
    throw new QmpProtocolError(`QMP ${command} returned an unexpected shape`, { command, field });
  }
  return value as T[];
}

function expectObj<T>(
  command: string,
  value: unknown,
  field?: string,
  kind?: 'string' | 'number' | 'boolean',
): T {
  if (!isObj(value) || (field !== undefined && typeof value[field] !== kind)) {
    throw new QmpProtocolError(`QMP ${command} returned an unexpected shape`, { command, field });
  }
  return value as T;
}

/** qapi/run-state.json StatusInfo. `status` is a RunState: "running", "paused", "prelaunch", … */
export interface QmpStatusInfo {
  readonly status: string;
  readonly running: boolean;
}

export async function queryStatus(q: QmpClient): Promise<QmpStatusInfo> {
  return expectObj('query-status', await q.execute('query-status'), 'running', 'boolean');
}

/** The VM's name (`-name`), or undefined when it has none. */
export async function queryName(q: QmpClient): Promise<string | undefined> {
  const r = expectObj<{ name?: unknown }>('query-name', await q.execute('query-name'));
  return typeof r.name === 'string' ? r.name : undefined;
}

/** The VM's UUID (`-uuid`); QEMU reports 00000000-0000-0000-0000-000000000000 when none was set. */
export async function queryUuid(q: QmpClient): Promise<string> {
  return expectObj<{ UUID: string }>('query-uuid', await q.execute('query-uuid'), 'UUID', 'string').UUID;
}

/** qapi/machine.json CpuInfoFast. */
export interface QmpCpuInfoFast {
  readonly 'cpu-index': number;
  readonly 'qom-path': string;
  readonly 'thread-id': number;
  readonly target: string;
  readonly props?: Readonly<Record<string, number>>;
}

export async function queryCpusFast(q: QmpClient): Promise<QmpCpuInfoFast[]> {
  return expectList('query-cpus-fast', await q.execute('query-cpus-fast'), 'cpu-index', 'number');
}

/** qapi/machine.json MemoryInfo: bytes of boot memory, and of hot-plugged memory when any. */
export interface QmpMemoryInfo {
  readonly 'base-memory': number;
  readonly 'plugged-memory'?: number;
}

export async function queryMemorySizeSummary(q: QmpClient): Promise<QmpMemoryInfo> {
  return expectObj(
    'query-memory-size-summary',
    await q.execute('query-memory-size-summary'),
    'base-memory',
    'number',
  );
}

/** qapi/block-core.json ImageInfo (the fields used; QEMU sends more). */
export interface QmpImageInfo {
  readonly filename: string;
  readonly format: string;
  readonly 'virtual-size': number;
  readonly 'actual-size'?: number;
  readonly 'cluster-size'?: number;
  readonly 'dirty-flag'?: boolean;
  readonly 'backing-filename'?: string;
  readonly 'backing-image'?: QmpImageInfo;
}

/** qapi/block-core.json BlockDirtyInfo. */
export interface QmpDirtyBitmapInfo {
  readonly name?: string;
  readonly count: number;
  readonly granularity: number;
  readonly recording: boolean;
  readonly busy: boolean;
  readonly persistent: boolean;
  readonly inconsistent?: boolean;
}

/** qapi/block-core.json BlockDeviceInfo: one block node (query-named-block-nodes, query-block's `inserted`). */
export interface QmpBlockDeviceInfo {
  readonly file: string;
  readonly 'node-name'?: string;
  readonly ro: boolean;
  readonly drv: string;
  readonly backing_file?: string;
  readonly backing_file_depth: number;
  readonly encrypted: boolean;
  readonly image: QmpImageInfo;
  readonly 'dirty-bitmaps'?: readonly QmpDirtyBitmapInfo[];
}

/** qapi/block-core.json BlockInfo: one guest-visible drive. */
export interface QmpBlockInfo {
  readonly device: string;
  /** QOM path or id of the device the drive is attached to. */
  readonly qdev?: string;
  readonly removable: boolean;
  readonly locked: boolean;
  readonly inserted?: QmpBlockDeviceInfo;
}

export async function queryBlock(q: QmpClient): Promise<QmpBlockInfo[]> {
  return expectList('query-block', await q.execute('query-block'), 'device', 'string');
}

/** Every block node, one entry per node (`flat`: backing images are not repeated inside). */
export async function queryNamedBlockNodes(q: QmpClient): Promise<QmpBlockDeviceInfo[]> {
  return expectList(
    'query-named-block-nodes',
    await q.execute('query-named-block-nodes', { flat: true }),
    'drv',
    'string',
  );
}

/** qapi/job.json JobInfo. `status` is a JobStatus: "running", "concluded", "null", … */
export interface QmpJobInfo {
  readonly id: string;
  readonly type: string;
  readonly status: string;
  readonly 'current-progress': number;
  readonly 'total-progress': number;
  readonly error?: string;
}

export async function queryJobs(q: QmpClient): Promise<QmpJobInfo[]> {
  return expectList('query-jobs', await q.execute('query-jobs'), 'id', 'string');
}

/** qapi/block-export.json BlockExportInfo (QEMU ≥ 5.2). */
export interface QmpBlockExportInfo {
  readonly id: string;
  readonly type: string;
  readonly 'node-name': string;
  readonly 'shutting-down': boolean;
}

export async function queryBlockExports(q: QmpClient): Promise<QmpBlockExportInfo[]> {
  return expectList('query-block-exports', await q.execute('query-block-exports'), 'id', 'string');
}

/**
 * Runs a human monitor (HMP) command and returns its text output. HMP reports most
 * failures as text, not as QMP errors: callers check the output.
 */
export async function humanMonitorCommand(q: QmpClient, commandLine: string): Promise<string> {
  const r = await q.execute('human-monitor-command', { 'command-line': commandLine });
  if (typeof r !== 'string') {
    throw new QmpProtocolError('QMP human-monitor-command returned no text', {
      command: 'human-monitor-command',
    });
  }
  return r;
}
