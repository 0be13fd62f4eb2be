/**
 * What a connector is to the control plane, split by role (style guide: adapters by role,
 * each small). A connector sits next to the source: it describes itself, reports the
 * inventory of servers it can see, and opens their disks for replication runs.
 *
 * Everything crossing this boundary is plain frozen data, except the `Disk` handles a
 * SourceClient opens (the caller closes them).
 */
import type { Disk } from '../disk/index.js';

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

export interface SourceClient {
  /**
   * Opens disk `index` (0-based, descriptor order) of a server for reading, as it is now.
   * The folder source reads files in place; sources with snapshots take one here.
   */
  openDisk(vmId: string, index: number): Promise<Disk>;
}

export interface Connector {
  readonly descriptor: ConnectorDescriptor;
  readonly inventory: InventoryCollector;
  readonly source: SourceClient;
}
