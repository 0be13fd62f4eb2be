/**
 * The launch context's public surface (docs/launch.md): a read-only NBD server that
 * serves disk-engine disks (store images) in place, and instances that run them under
 * QEMU through a copy-on-write qcow2 overlay.
 */
export {
  NbdServer,
  nbdUnixUri,
  MAX_EXPORTS,
  type NbdServerEvent,
  type NbdServerOptions,
} from './nbd-server/server.js';
export type { NbdExport } from './nbd-server/handshake.js';
