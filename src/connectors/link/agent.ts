/**
 * The connector end of a link: serves a local Connector (folder, KVM, …) to the server.
 * The server calls the same roles it calls in-process — inventory, snapshot, release,
 * sweep, and disks opened by handle and read by range (`disk.*`, src/link/disks.ts) — so
 * runs execute the same itinerary whether the connector is built in or remote. Every
 * count, size and range the server sends is checked here before use.
 */
import type { DiskLayer } from '../../disk/index.js';
import { InvalidArgumentError, NotFoundError } from '../../errors/index.js';
import { int, serveDisks, str, type Handler, type Served } from '../../link/index.js';
import type { Connector, InventoryServer, SourceSnapshot } from '../types.js';

/** Servers per inventory page. */
export const INVENTORY_PAGE = 500;
/** Inventory collections kept for paging at once (concurrent imports and runs). */
const MAX_INVENTORIES = 8;

/**
 * The layer a `changed` snapshot disk is stacked on here: it holds nothing, so what the
 * source did not change maps as `unallocated` and the server resolves it from the
 * previous image it stacks under the remote disk.
 */
function holeBase(virtualSize: number): DiskLayer {
  return {
    info: {
      format: 'raw',
      subformat: 'hole',
      virtualSize,
      clusterSize: 512,
      fileSize: 0,
      files: [],
      warnings: [],
      details: {},
    },
    map: async (offset, length) => [{ offset, length, kind: 'unallocated' }],
    read: async (_offset, length) => Buffer.alloc(length),
    close: async () => undefined,
  };
}

export function serveConnector(connector: Connector): Served {
  let nextToken = 1;
  // A few collections at once (two runs may look up their server together), newest kept.
  const inventories = new Map<string, readonly InventoryServer[]>();
  const disks = serveDisks('disk', async (p) => {
    const snapshot = p.snapshot as SourceSnapshot | undefined;
    const index = int(p, 'index', 0, 255);
    const sd = snapshot?.disks?.find((x) => x.index === index);
    const base = p.changed === true && sd ? holeBase(sd.virtualSize) : undefined;
    const disk = await connector.source.openDisk(str(p, 'vmId'), index, snapshot, base);
    // The source may read in full after all (no checkpoint): then it did not stack on the
    // hole, its unallocated ranges read as zeros, and the server must not stack either.
    const stacked = disk.layers.some((l) => l.subformat === 'hole');
    return { disk, result: { stacked, name: disk.names[0] ?? '' } };
  });
  const handlers: Record<string, Handler> = {
    'inventory.collect': async () => {
      const servers = await connector.inventory.collect();
      const token = `inv-${Date.now().toString(36)}-${nextToken++}`;
      inventories.set(token, servers);
      while (inventories.size > MAX_INVENTORIES)
        inventories.delete(inventories.keys().next().value as string);
      return { result: { token, count: servers.length } };
    },
    'inventory.page': async (p) => {
      const all = typeof p.token === 'string' ? inventories.get(p.token) : undefined;
      if (!all)
        throw new NotFoundError('link call: inventory token unknown (collect again)', {
          resource: 'inventory',
        });
      const from = int(p, 'from', 0, all.length);
      const servers = all.slice(from, from + INVENTORY_PAGE);
      return { body: Buffer.from(JSON.stringify(servers), 'utf8') };
    },
    'source.snapshot': async (p) => {
      if (!connector.source.snapshot) throw new InvalidArgumentError('this connector takes no snapshots');
      const since = typeof p.since === 'string' ? p.since : undefined;
      const snap = await connector.source.snapshot(str(p, 'vmId'), {
        runId: str(p, 'runId'),
        ...(since ? { since } : {}),
      });
      return { result: snap };
    },
    'source.release': async (p) => {
      await connector.source.release?.(str(p, 'vmId'), str(p, 'snapshotId'), p.committed === true);
    },
    'source.sweep': async (p) => {
      const keep = (p.keep ?? {}) as { snapshots?: unknown; checkpoints?: unknown };
      const list = (v: unknown) =>
        Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').slice(0, 1000) : [];
      await connector.source.sweep?.(str(p, 'vmId'), {
        snapshots: list(keep.snapshots),
        checkpoints: list(keep.checkpoints),
      });
    },
    ...disks.handlers,
  };
  return { handlers, closeAll: () => disks.closeAll() };
}
