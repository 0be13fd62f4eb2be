/**
 * The protocol clients for agentless replication of running KVM/QEMU VMs: QMP (qmp/) to
 * drive QEMU — dirty bitmaps, fleecing backups, NBD exports, jobs — and NBD (nbd/) to read
 * the exported disks and their allocation / dirty-bitmap block status.
 */
export * from './qmp/index.js';
export * from './nbd/index.js';
