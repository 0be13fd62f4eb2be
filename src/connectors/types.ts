/**
 * What a connector is to the control plane, split by role (style guide: adapters by role,
 * each small). A connector sits next to the source: it describes itself, reports the
 * inventory of servers it can see, and opens their disks for replication runs.
 *
 * Everything crossing this boundary is plain frozen data, except the `Disk` handles a
 * SourceClient opens (the caller closes them).
 */
import type { Disk, DiskLayer } from '../disk/index.js';

export const CONNECTOR_CAPABILITIES = [
  'VSPHERE',
  'SCVMM',
  'HYPERV-MANAGER',
  'SNAPSHOT_BATCHING',
  'SMS_OPTIMIZED',
] as const;
export type ConnectorCapability = (typeof CONNECTOR_CAPABILITIES)[number];
export const VM_MANAGER_TYPES = ['VSPHERE', 'SCVMM', 'HYPERV-MANAGER'] as const;
export type VmManagerType = (typeof VM_MANAGER_TYPES)[number];

export interface ConnectorDescriptor {
  readonly connectorId: string;
  /** 'local': runs inside the server process; 'remote': enrolled over the connector protocol. */
  readonly kind: 'local' | 'remote';
  readonly version: string;
  readonly capabilities: readonly ConnectorCapability[];
  readonly vmManagerId: string;
  readonly vmManagerName: string;
  readonly vmManagerType?: VmManagerType;
  readonly ipAddress?: string;
  readonly macAddress?: string;
  /** Runs this connector takes at once (a host's capacity); absent: no cap of its own. */
  readonly maxConcurrentRuns?: number;
}

export interface InventoryDisk {
  /** Path relative to the server's directory (how descriptors name it). */
  readonly name: string;
  readonly format: string;
  readonly subformat: string;
  readonly virtualSize: number;
  /** Bytes the image's files occupy. */
  readonly fileSize: number;
  /** Files of the disk besides the named one (extents, backing files), relative. */
  readonly files: readonly string[];
}

export interface InventoryNic {
  readonly macAddress?: string;
  readonly network?: string;
}

export interface ServerFacts {
  readonly disks: readonly InventoryDisk[];
  readonly cpus?: number;
  readonly memoryMiB?: number;
  readonly nics: readonly InventoryNic[];
  readonly guestOs?: string;
  readonly firmware?: string;
  /** The descriptor the facts came from, relative to the server's directory. */
  readonly descriptor?: { readonly kind: 'ovf' | 'vmx'; readonly file: string };
  /** Things the user should know (a file that is not a usable disk, a missing disk, …). */
  readonly warnings: readonly string[];
}

export interface InventoryServer {
  /** Stable id of the VM within its VM manager (the folder source: the directory name). */
  readonly vmId: string;
  readonly vmName: string;
  readonly vmPath: string;
  readonly vmManagerType?: VmManagerType;
  readonly facts: ServerFacts;
}

export interface InventoryCollector {
  /** Every server the connector can see now. */
  collect(signal?: AbortSignal): Promise<readonly InventoryServer[]>;
}

/** How a snapshot exposes one disk (see SourceClient.snapshot). */
export interface SnapshotDisk {
  readonly index: number;
  readonly virtualSize: number;
  /**
   * `full`: the disk's map tags what is allocated; every byte must be read.
   * `changed`: the map tags ranges unchanged since the `since` checkpoint as `unallocated`
   * (asking the layer below), so the reader layers the previous image under it and reads
   * only what changed.
   */
  readonly mode: 'full' | 'changed';
  /** Why a full read was needed although a checkpoint was given (rescan), for the run's status. */
  readonly rescan?: string;
}

/** A consistent point in time of all disks of one server, held by the source until released. */
export interface SourceSnapshot {
  /** Names the snapshot at the source; persisted in the run so a restarted server reattaches. */
  readonly id: string;
  readonly takenAt: number;
  /** Change-tracking token for the next run's `since` (absent: the source tracks no changes). */
  readonly checkpoint?: string;
  readonly disks: readonly SnapshotDisk[];
  /** Things the user should know (guest agent did not answer: crash-consistent only, …). */
  readonly warnings: readonly string[];
}

export interface SnapshotOptions {
  /** The run (the same across its attempts): names everything the source creates for it. */
  readonly runId: string;
  /** Checkpoint of the last run whose image was committed. */
  readonly since?: string;
  readonly signal?: AbortSignal;
}

export interface SourceClient {
  /**
   * Opens disk `index` (0-based, descriptor order) of a server for reading. Without a
   * snapshot: as it is now (the folder source reads its files in place). With one: that
   * point in time; `base` is the previous image's disk, which a `changed` disk stacks
   * under itself (the returned disk then owns and closes it).
   */
  openDisk(vmId: string, index: number, snapshot?: SourceSnapshot, base?: DiskLayer): Promise<Disk>;
  /**
   * Takes one point in time of every disk of the server (sources that can; others read
   * at rest). Idempotent per `runId`: a second call for the same run returns the same
   * snapshot if it still exists at the source.
   */
  snapshot?(vmId: string, options: SnapshotOptions): Promise<SourceSnapshot>;
  /**
   * Ends a snapshot and removes what it created. `committed`: the run's image is stored,
   * change tracking moves on to this snapshot's checkpoint; otherwise the changes since
   * `since` are kept for the next run. Releasing an unknown or released snapshot is a no-op.
   */
  release?(vmId: string, snapshotId: string, committed: boolean): Promise<void>;
  /**
   * Removes what an earlier process left at the source (fleecing nodes, exports, jobs,
   * bitmaps of abandoned runs), keeping the snapshots named in `keep` and the checkpoints
   * still needed.
   */
  sweep?(vmId: string, keep: { snapshots: readonly string[]; checkpoints: readonly string[] }): Promise<void>;
}

export interface Connector {
  readonly descriptor: ConnectorDescriptor;
  readonly inventory: InventoryCollector;
  readonly source: SourceClient;
}
