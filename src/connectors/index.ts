/**
 * Connectors: adapters next to a source that describe it, report its inventory and open
 * its disks. The first source is a folder of VM exports, served by the built-in local
 * connector; running KVM/QEMU VMs are the second (createKvmConnector, docs/connectors/kvm.md).
 * (Remote connectors speak the protocol in docs/connector-protocol.md.)
 */
export type {
  Connector,
  ConnectorCapability,
  ConnectorDescriptor,
  InventoryCollector,
  InventoryDisk,
  InventoryNic,
  InventoryServer,
  ServerFacts,
  SnapshotDisk,
  SnapshotOptions,
  SourceClient,
  SourceSnapshot,
  VmManagerType,
} from './types.js';
export { CONNECTOR_CAPABILITIES, VM_MANAGER_TYPES } from './types.js';
export {
  createFolderConnector,
  MAX_SERVERS_PER_FOLDER,
  type FolderConnectorOptions,
} from './folder/connector.js';
export { parseVmx, type VmxFacts } from './folder/vmx.js';
export { parseOvf, type OvfFacts } from './folder/ovf.js';
// Live KVM/QEMU sources: the QMP (control) and NBD (data) protocol clients.
export * as kvm from './kvm/index.js';
export { QmpClient, NbdClient, NbdByteSource, openNbdSource } from './kvm/index.js';
export { createKvmConnector, type KvmConnectorOptions } from './kvm/index.js';
export * as link from './link/index.js';
export { RemoteConnector, serveConnector, runLink } from './link/index.js';
