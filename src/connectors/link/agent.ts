/**
 * The connector end of a link: serves a local Connector (folder, KVM, …) to the server.
 * The server calls the same roles it calls in-process — inventory, snapshot, release,
 * sweep, and disks opened by handle and read by range — so runs execute the same
 * itinerary whether the connector is built in or remote. Every count, size and range the
 * server sends is checked here before use.
 */
import type { Disk, DiskLayer } from '../../disk/index.js';
import { InvalidArgumentError, LinkProtocolError, NotFoundError } from '../../errors/index.js';
import type { Connector, InventoryServer, SourceSnapshot } from '../types.js';
import type { Handler } from './peer.js';

/** Disks open at once per link (a run opens one per server disk; a few runs at once). */
export const MAX_OPEN_DISKS = 64;
/** Largest read the server may ask for in one call. */
export const MAX_READ = 4 << 20;
/** Extents per map answer (17 bytes each in the body); the caller continues after the last. */
export const MAX_EXTENTS = 65_536;
/** Servers per inventory page. */
export const INVENTORY_PAGE = 500;
/** Inventory collections kept for paging at once (concurrent imports and runs). */
const MAX_INVENTORIES = 8;

const KINDS = ['data', 'zero', 'unallocated', 'compressed'] as const;

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

function int(p: Record<string, unknown>, name: string, min: number, max: number): number {
  const v = p[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    throw new InvalidArgumentError(`link call: ${name} must be an integer in ${min}…${max}`, {
      member: name,
    });
  return v;
}

function str(p: Record<string, unknown>, name: string): string {
  const v = p[name];
  if (typeof v !== 'string' || v.length === 0 || v.length > 1024)
    throw new InvalidArgumentError(`link call: ${name} must be a non-empty string`, { member: name });
  return v;
}

export interface AgentState {
  readonly handlers: Record<string, Handler>;
  /** Closes every disk the server left open (the link dropped). */
  closeAll(): Promise<void>;
}

export function serveConnector(connector: Connector): AgentState {
  const disks = new Map<number, Disk>();
  let nextHandle = 1;
  // A few collections at once (two runs may look up their server together), newest kept.
  const inventories = new Map<string, readonly InventoryServer[]>();
  const disk = (p: Record<string, unknown>) => {
    const d = disks.get(int(p, 'handle', 1, Number.MAX_SAFE_INTEGER));
    if (!d)
      throw new NotFoundError('link call: no such open disk (the connector restarted?)', {
        resource: 'disk',
      });
    return d;
  };
  const range = (p: Record<string, unknown>, d: Disk, max: number) => {
    const offset = int(p, 'offset', 0, d.virtualSize);
    const length = int(p, 'length', 0, Math.min(max, d.virtualSize - offset));
    return { offset, length };
  };
  const handlers: Record<string, Handler> = {
    'inventory.collect': async () => {
      const servers = await connector.inventory.collect();
      const token = `inv-${Date.now().toString(36)}-${nextHandle++}`;
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
    'disk.open': async (p) => {
      if (disks.size >= MAX_OPEN_DISKS)
        throw new InvalidArgumentError(`more than ${MAX_OPEN_DISKS} disks open on this link`);
      const snapshot = p.snapshot as SourceSnapshot | undefined;
      const index = int(p, 'index', 0, 255);
      const sd = snapshot?.disks?.find((x) => x.index === index);
      const base = p.changed === true && sd ? holeBase(sd.virtualSize) : undefined;
      const d = await connector.source.openDisk(str(p, 'vmId'), index, snapshot, base);
      const handle = nextHandle++;
      disks.set(handle, d);
      // The source may read in full after all (no checkpoint): then it did not stack on the
      // hole, its unallocated ranges read as zeros, and the server must not stack either.
      const stacked = d.layers.some((l) => l.subformat === 'hole');
      return { result: { handle, virtualSize: d.virtualSize, stacked, name: d.names[0] ?? '' } };
    },
    'disk.map': async (p) => {
      const d = disk(p);
      const { offset, length } = range(p, d, Number.MAX_SAFE_INTEGER);
      const out = Buffer.allocUnsafe(Math.min(MAX_EXTENTS, 1 + Math.ceil(length / 512)) * 17);
      let n = 0;
      if (length > 0) {
        for await (const e of d.map(offset, length)) {
          out.writeBigUInt64BE(BigInt(e.offset), n * 17);
          out.writeBigUInt64BE(BigInt(e.length), n * 17 + 8);
          out.writeUInt8(KINDS.indexOf(e.kind), n * 17 + 16);
          if (++n * 17 === out.length) break; // full: the caller continues after the last
        }
      }
      return { body: out.subarray(0, n * 17) };
    },
    'disk.read': async (p) => {
      const d = disk(p);
      const { offset, length } = range(p, d, MAX_READ);
      return { body: await d.read(offset, length) };
    },
    'disk.close': async (p) => {
      const handle = int(p, 'handle', 1, Number.MAX_SAFE_INTEGER);
      const d = disks.get(handle);
      disks.delete(handle);
      await d?.close();
    },
  };
  return {
    handlers,
    async closeAll() {
      const open = [...disks.values()];
      disks.clear();
      await Promise.allSettled(open.map((d) => d.close()));
    },
  };
}

/** Decodes a `disk.map` body (17 bytes per extent) with its bounds checked. */
export function decodeExtents(body: Buffer, offset: number, length: number) {
  if (body.length % 17 !== 0) throw new LinkProtocolError('link map answer is not whole extents');
  const out: { offset: number; length: number; kind: (typeof KINDS)[number] }[] = [];
  let at = offset;
  for (let i = 0; i < body.length; i += 17) {
    const o = Number(body.readBigUInt64BE(i));
    const l = Number(body.readBigUInt64BE(i + 8));
    const kind = KINDS[body.readUInt8(i + 16)];
    if (!kind || o !== at || l <= 0 || o + l > offset + length)
      throw new LinkProtocolError('link map answer is not a contiguous cover of the range asked');
    out.push({ offset: o, length: l, kind });
    at = o + l;
  }
  return out;
}
