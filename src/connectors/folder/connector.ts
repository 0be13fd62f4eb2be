/**
 * The disk-image-folder source: each subdirectory of the images directory is one server
 * (a VM export: OVF + VMDKs, VMX + VMDKs, Hyper-V VHD/VHDX, or plain images). The
 * built-in local connector serves it from inside the server process.
 */
import { createHash } from 'node:crypto';
import { readdir, realpath } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { openDisk, type Disk } from '../../disk/index.js';
import { InvalidArgumentError, NotFoundError, toFerryError } from '../../errors/index.js';
import type { Connector, ConnectorDescriptor, InventoryServer } from '../types.js';
import { naturalCompare, scanServer } from './scan.js';

/** More servers than this in one folder is a mistake (the wrong directory), not a fleet. */
export const MAX_SERVERS_PER_FOLDER = 10_000;

export interface FolderConnectorOptions {
  readonly connectorId: string;
  readonly imagesDir: string;
  readonly version: string;
}

export async function createFolderConnector(options: FolderConnectorOptions): Promise<Connector> {
  let root: string;
  try {
    root = await realpath(options.imagesDir);
  } catch (err) {
    throw new InvalidArgumentError(
      `images directory ${options.imagesDir} is not accessible: ${toFerryError(err).message}`,
      {
        path: options.imagesDir,
      },
    );
  }
  const vmManagerId = `folder-${createHash('sha256').update(root).digest('hex').slice(0, 12)}`;
  const nic = primaryNic();
  const descriptor: ConnectorDescriptor = Object.freeze({
    connectorId: options.connectorId,
    kind: 'local',
    version: options.version,
    // It reads what vSphere (VMX/OVF + VMDK) and Hyper-V (VHD/VHDX) exports contain.
    capabilities: Object.freeze(['VSPHERE', 'HYPERV-MANAGER'] as const),
    vmManagerId,
    vmManagerName: `folder:${root}`,
    ...(nic ? { ipAddress: nic.address, macAddress: nic.mac } : {}),
  });

  const serverDir = async (vmId: string): Promise<string> => {
    if (!/^[^/\\]+$/.test(vmId) || vmId === '.' || vmId === '..') {
      throw new NotFoundError(`no server ${vmId} in ${root}`, { resource: 'server', vmId });
    }
    return join(root, vmId);
  };

  return {
    descriptor,
    inventory: {
      async collect(signal?: AbortSignal): Promise<InventoryServer[]> {
        const entries = (await readdir(root, { withFileTypes: true }))
          .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
          .sort((a, b) => naturalCompare(a.name, b.name));
        if (entries.length > MAX_SERVERS_PER_FOLDER) {
          throw new InvalidArgumentError(
            `${root} has more than ${MAX_SERVERS_PER_FOLDER} server directories`,
            {
              limit: MAX_SERVERS_PER_FOLDER,
            },
          );
        }
        const out: InventoryServer[] = [];
        for (const e of entries) {
          signal?.throwIfAborted();
          const dir = join(root, e.name);
          const s = await scanServer(dir);
          out.push({
            vmId: e.name,
            vmName: s.vmName ?? e.name,
            vmPath: dir,
            ...(s.vmManagerType ? { vmManagerType: s.vmManagerType } : {}),
            facts: s.facts,
          });
        }
        return out;
      },
    },
    source: {
      async openDisk(vmId: string, index: number): Promise<Disk> {
        const s = await scanServer(await serverDir(vmId));
        const path = s.diskPaths[index];
        if (path === undefined) {
          throw new NotFoundError(`server ${vmId} has no disk ${index} (it has ${s.diskPaths.length})`, {
            resource: 'disk',
            vmId,
            index,
          });
        }
        return openDisk(path);
      },
    },
  };
}

function primaryNic(): { address: string; mac: string } | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const n of list ?? []) {
      if (!n.internal && n.family === 'IPv4') return { address: n.address, mac: n.mac };
    }
  }
  return undefined;
}
