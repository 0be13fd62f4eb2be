/**
 * Typed QMP block commands for agentless backup of a running VM, the way libvirt's backup
 * API and virtnbdbackup drive QEMU (docs/interop/bitmaps.rst, "Example: Incremental Push
 * Backups" and the pull/fleecing flow): dirty bitmaps track changes, `blockdev-backup`
 * with `sync: none` into a fleecing overlay freezes a point in time, and the overlay is
 * exported over NBD with the bitmap. Argument names are QEMU's (QAPI, QEMU 7.2).
 */
import type { QmpClient } from './client.js';

// ── Dirty bitmaps (qapi/block-core.json) ────────────────────────────────────────────
export interface BitmapAddArgs {
  readonly node: string;
  readonly name: string;
  /** Bytes per bit; QEMU's default is the image cluster size (64 KiB for qcow2). */
  readonly granularity?: number;
  /** Stored in the qcow2 file and kept across VM restarts (qcow2 only). */
  readonly persistent?: boolean;
  /** Created not recording writes. */
  readonly disabled?: boolean;
}
export interface BitmapRef {
  readonly node: string;
  readonly name: string;
}
export interface BitmapMergeArgs {
  readonly node: string;
  readonly target: string;
  /** Source bitmaps: a name on `node`, or a bitmap on another node. */
  readonly bitmaps: readonly (string | BitmapRef)[];
}

export async function blockDirtyBitmapAdd(q: QmpClient, args: BitmapAddArgs): Promise<void> {
  await q.execute('block-dirty-bitmap-add', { ...args });
}
export async function blockDirtyBitmapRemove(q: QmpClient, args: BitmapRef): Promise<void> {
  await q.execute('block-dirty-bitmap-remove', { ...args });
}
export async function blockDirtyBitmapClear(q: QmpClient, args: BitmapRef): Promise<void> {
  await q.execute('block-dirty-bitmap-clear', { ...args });
}
export async function blockDirtyBitmapEnable(q: QmpClient, args: BitmapRef): Promise<void> {
  await q.execute('block-dirty-bitmap-enable', { ...args });
}
export async function blockDirtyBitmapDisable(q: QmpClient, args: BitmapRef): Promise<void> {
  await q.execute('block-dirty-bitmap-disable', { ...args });
}
export async function blockDirtyBitmapMerge(q: QmpClient, args: BitmapMergeArgs): Promise<void> {
  await q.execute('block-dirty-bitmap-merge', { ...args, bitmaps: [...args.bitmaps] });
}

// ── Block nodes ─────────────────────────────────────────────────────────────────────
/**
 * Adds a block node. `options` is a BlockdevOptions object as QEMU documents it, e.g. a
 * fleecing overlay: `{ driver: 'qcow2', 'node-name': 'fleece0', file: { driver: 'file',
 * filename: '/tmp/f.qcow2' }, backing: 'disk0' }`.
 */
export async function blockdevAdd(q: QmpClient, options: Readonly<Record<string, unknown>>): Promise<void> {
  await q.execute('blockdev-add', options);
}
export async function blockdevDel(q: QmpClient, nodeName: string): Promise<void> {
  await q.execute('blockdev-del', { 'node-name': nodeName });
}

/** qapi/block-core.json BlockdevBackup (the members used for fleecing and push backups). */
export interface BlockdevBackupArgs {
  readonly 'job-id': string;
  readonly device: string;
  readonly target: string;
  /** 'none' for fleecing: only copy-before-write of regions the guest overwrites. */
  readonly sync: 'none' | 'full' | 'top' | 'incremental' | 'bitmap';
  readonly bitmap?: string;
  readonly 'bitmap-mode'?: 'on-success' | 'never' | 'always';
  readonly 'auto-finalize'?: boolean;
  readonly 'auto-dismiss'?: boolean;
  readonly 'on-source-error'?: 'report' | 'ignore' | 'enospc' | 'stop';
  readonly 'on-target-error'?: 'report' | 'ignore' | 'enospc' | 'stop';
}

export async function blockdevBackup(q: QmpClient, args: BlockdevBackupArgs): Promise<void> {
  await q.execute('blockdev-backup', { ...args });
}

// ── NBD exports (qapi/block-export.json) ────────────────────────────────────────────
/** Where QEMU's built-in NBD server listens (SocketAddressLegacy, as nbd-server-start takes it). */
export type NbdServerAddress =
  | { readonly type: 'unix'; readonly path: string }
  | { readonly type: 'inet'; readonly host: string; readonly port: number };

export async function nbdServerStart(
  q: QmpClient,
  addr: NbdServerAddress,
  options: { readonly 'max-connections'?: number; readonly 'tls-creds'?: string } = {},
): Promise<void> {
  const data = addr.type === 'unix' ? { path: addr.path } : { host: addr.host, port: String(addr.port) };
  await q.execute('nbd-server-start', { addr: { type: addr.type, data }, ...options });
}
export async function nbdServerStop(q: QmpClient): Promise<void> {
  await q.execute('nbd-server-stop');
}

/** qapi/block-export.json BlockExportOptions for type nbd (QEMU ≥ 5.2). */
export interface NbdExportArgs {
  readonly id: string;
  readonly 'node-name': string;
  /** Export name clients pass in NBD_OPT_GO; defaults to the node name. */
  readonly name?: string;
  readonly description?: string;
  readonly writable?: boolean;
  /** Bitmaps offered as `qemu:dirty-bitmap:NAME` metadata contexts. */
  readonly bitmaps?: readonly string[];
  /** Offer the `qemu:allocation-depth` metadata context. */
  readonly 'allocation-depth'?: boolean;
}

export async function blockExportAddNbd(q: QmpClient, args: NbdExportArgs): Promise<void> {
  await q.execute('block-export-add', {
    type: 'nbd',
    ...args,
    ...(args.bitmaps ? { bitmaps: [...args.bitmaps] } : {}),
  });
}
/** 'safe' (default) fails while clients are connected; 'hard' disconnects them. */
export async function blockExportDel(q: QmpClient, id: string, mode?: 'safe' | 'hard'): Promise<void> {
  await q.execute('block-export-del', { id, ...(mode ? { mode } : {}) });
}

/** The pre-5.2 way to export a node (deprecated upstream in favour of block-export-add). */
export async function nbdServerAdd(
  q: QmpClient,
  args: {
    readonly device: string;
    readonly name?: string;
    readonly writable?: boolean;
    readonly bitmap?: string;
  },
): Promise<void> {
  await q.execute('nbd-server-add', { ...args });
}
export async function nbdServerRemove(q: QmpClient, name: string, mode?: 'safe' | 'hard'): Promise<void> {
  await q.execute('nbd-server-remove', { name, ...(mode ? { mode } : {}) });
}

// ── Jobs (qapi/job.json) ────────────────────────────────────────────────────────────
export async function jobCancel(q: QmpClient, id: string): Promise<void> {
  await q.execute('job-cancel', { id });
}
export async function jobDismiss(q: QmpClient, id: string): Promise<void> {
  await q.execute('job-dismiss', { id });
}
export async function jobFinalize(q: QmpClient, id: string): Promise<void> {
  await q.execute('job-finalize', { id });
}

// ── Transactions (qapi/transaction.json) ────────────────────────────────────────────
export interface TransactionAction {
  readonly type: string;
  readonly data: Readonly<Record<string, unknown>>;
}

/** Builders for the transaction actions the backup flow groups atomically. */
export const actions = {
  bitmapAdd: (data: BitmapAddArgs): TransactionAction => ({
    type: 'block-dirty-bitmap-add',
    data: { ...data },
  }),
  bitmapClear: (data: BitmapRef): TransactionAction => ({
    type: 'block-dirty-bitmap-clear',
    data: { ...data },
  }),
  bitmapEnable: (data: BitmapRef): TransactionAction => ({
    type: 'block-dirty-bitmap-enable',
    data: { ...data },
  }),
  bitmapDisable: (data: BitmapRef): TransactionAction => ({
    type: 'block-dirty-bitmap-disable',
    data: { ...data },
  }),
  bitmapMerge: (data: BitmapMergeArgs): TransactionAction => ({
    type: 'block-dirty-bitmap-merge',
    data: { ...data, bitmaps: [...data.bitmaps] },
  }),
  blockdevBackup: (data: BlockdevBackupArgs): TransactionAction => ({
    type: 'blockdev-backup',
    data: { ...data },
  }),
} as const;

/**
 * Runs actions atomically: all or none. 'grouped' completion makes jobs started by the
 * transaction fail together (QEMU's default is 'individual').
 */
export async function transaction(
  q: QmpClient,
  list: readonly TransactionAction[],
  completionMode?: 'individual' | 'grouped',
): Promise<void> {
  await q.execute('transaction', {
    actions: list.map((a) => ({ type: a.type, data: a.data })),
    ...(completionMode ? { properties: { 'completion-mode': completionMode } } : {}),
  });
}
