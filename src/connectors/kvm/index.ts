/**
 * Agentless replication of running KVM/QEMU VMs: the connector (connector.ts; inventory,
 * point-in-time snapshots of all disks, changed-block reading, release and sweep), and the
 * protocol clients it is built on: QMP (qmp/) to drive QEMU — dirty bitmaps, fleecing
 * backups, NBD exports, jobs — and NBD (nbd/) to read the exported disks and their
 * allocation / dirty-bitmap block status. See docs/connectors/kvm.md.
 */
export * from './qmp/index.js';
export * from './nbd/index.js';
export {
  createKvmConnector,
  ferryLeftovers,
  MAX_VMS_PER_QMP_DIR,
  type KvmConnectorOptions,
  type KvmLog,
} from './connector.js';
