/**
 * The server end of a link: a Connector whose roles are calls to a remote connector
 * process. The run executor uses it exactly like a built-in connector.
 *
 * A dropped link does not fail a run: every call waits (bounded) for the connector to
 * come back and is retried — snapshot, release and sweep are idempotent per run, and an
 * open disk is reopened on the new link and the read that failed is sent again, so a run
 * resumes where the link dropped instead of starting over.
 */
import { LayeredDisk, type Disk, type DiskLayer } from '../../disk/index.js';
import { LinkDownError, LinkProtocolError, toFerryError, type FerryError } from '../../errors/index.js';
import type {
  Connector,
  ConnectorDescriptor,
  InventoryServer,
  SnapshotOptions,
  SourceSnapshot,
} from '../types.js';
import { decodeExtents, MAX_READ } from './agent.js';
import type { LinkPeer } from './peer.js';

/** How long a call waits for a dropped connector to reconnect before failing the run. */
export const RECONNECT_WAIT_MS = 120_000;
/** Reconnections one call survives (a link that keeps dropping is not going to work). */
const MAX_CALL_RETRIES = 8;

const isLinkLoss = (e: FerryError) =>
  e.code === 'FERRY_LINK_DOWN' ||
  e.code === 'FERRY_LINK_TIMEOUT' ||
  (e.code === 'FERRY_NOT_FOUND' && e.details.resource === 'disk');

/** Which optional source roles the remote connector has (its hello says). */
export interface RemoteRoles {
  readonly snapshot?: boolean;
  readonly release?: boolean;
  readonly sweep?: boolean;
}

export class RemoteConnector implements Connector {
  descriptor: ConnectorDescriptor;
  readonly inventory;
  source: Connector['source'];
  #peer: LinkPeer | undefined;
  #waiters: (() => void)[] = [];
  readonly #reconnectWaitMs: number;

  constructor(descriptor: ConnectorDescriptor, o: { reconnectWaitMs?: number; roles?: RemoteRoles } = {}) {
    this.descriptor = descriptor;
    this.#reconnectWaitMs = o.reconnectWaitMs ?? RECONNECT_WAIT_MS;
    this.inventory = { collect: () => this.#collect() };
    this.source = this.#source(o.roles ?? {});
  }

  /** The source roles: reading always; snapshots only where the remote source takes them. */
  #source(roles: RemoteRoles): Connector['source'] {
    return {
      openDisk: (vmId: string, index: number, snapshot?: SourceSnapshot, base?: DiskLayer) =>
        this.#openDisk(vmId, index, snapshot, base),
      ...(roles.snapshot
        ? {
            snapshot: async (vmId: string, o: SnapshotOptions) =>
              (
                await this.call('source.snapshot', {
                  vmId,
                  runId: o.runId,
                  ...(o.since ? { since: o.since } : {}),
                })
              ).result as SourceSnapshot,
          }
        : {}),
      ...(roles.release
        ? {
            release: async (vmId: string, snapshotId: string, committed: boolean) => {
              await this.call('source.release', { vmId, snapshotId, committed });
            },
          }
        : {}),
      ...(roles.sweep
        ? {
            sweep: async (
              vmId: string,
              keep: { snapshots: readonly string[]; checkpoints: readonly string[] },
            ) => {
              await this.call('source.sweep', { vmId, keep });
            },
          }
        : {}),
    };
  }

  get connected(): boolean {
    return this.#peer !== undefined && !this.#peer.closed;
  }

  /** A (re)connected link of this connector: calls waiting for one go on. */
  attach(peer: LinkPeer, descriptor?: ConnectorDescriptor, roles?: RemoteRoles): void {
    this.#peer?.close();
    this.#peer = peer;
    if (descriptor) this.descriptor = descriptor;
    if (roles) this.source = this.#source(roles);
    peer.onClose(() => {
      if (this.#peer === peer) this.#peer = undefined;
    });
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const w of waiting) w();
  }

  /** Drops the link (DisassociateConnector, server stop). */
  detach(): void {
    this.#peer?.close();
    this.#peer = undefined;
  }

  async #link(): Promise<LinkPeer> {
    if (this.#peer && !this.#peer.closed) return this.#peer;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== done);
        reject(
          new LinkDownError(
            `connector ${this.descriptor.connectorId} is not connected (waited ${Math.round(this.#reconnectWaitMs / 1000)} s)`,
            { connectorId: this.descriptor.connectorId },
          ),
        );
      }, this.#reconnectWaitMs);
      timer.unref();
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#waiters.push(done);
    });
    return this.#link();
  }

  /** One call, retried across reconnections; says which link answered it. */
  async call(
    method: string,
    params: object,
    body?: Buffer,
  ): Promise<{ result: unknown; body: Buffer; peer: LinkPeer }> {
    for (let attempt = 0; ; attempt++) {
      const peer = await this.#link();
      try {
        return { ...(await peer.call(method, params, body)), peer };
      } catch (err) {
        const fe = toFerryError(err);
        if (fe.code !== 'FERRY_LINK_DOWN' || attempt >= MAX_CALL_RETRIES) throw fe;
      }
    }
  }

  async #collect(): Promise<InventoryServer[]> {
    const { result } = await this.call('inventory.collect', {});
    const { token, count } = result as { token: string; count: number };
    const out: InventoryServer[] = [];
    while (out.length < count) {
      const page = await this.call('inventory.page', { token, from: out.length });
      const servers = JSON.parse(page.body.toString('utf8')) as InventoryServer[];
      if (!Array.isArray(servers) || servers.length === 0) break;
      out.push(...servers);
    }
    return out;
  }

  async #openDisk(vmId: string, index: number, snapshot?: SourceSnapshot, base?: DiskLayer): Promise<Disk> {
    const changed = base !== undefined && snapshot?.disks.find((d) => d.index === index)?.mode === 'changed';
    const layer = new RemoteLayer(this, { vmId, index, ...(snapshot ? { snapshot } : {}), changed });
    const opened = await layer.open().catch(async (err: unknown) => {
      await base?.close();
      throw err;
    });
    const name = `connector:${this.descriptor.connectorId}/${vmId}/${index}`;
    if (opened.stacked && base) return new LayeredDisk([layer, base], [name, 'base']);
    await base?.close();
    return new LayeredDisk([layer], [name]);
  }
}

interface OpenParams {
  readonly vmId: string;
  readonly index: number;
  readonly snapshot?: SourceSnapshot;
  readonly changed: boolean;
}

/** One disk of a remote source, read by range over the link and reopened after a drop. */
class RemoteLayer implements DiskLayer {
  info: DiskLayer['info'] = {
    format: 'raw',
    subformat: 'remote',
    virtualSize: 0,
    clusterSize: 512,
    fileSize: 0,
    files: [],
    warnings: [],
    details: {},
  };
  readonly #c: RemoteConnector;
  readonly #p: OpenParams;
  #handle: { id: number; peer: LinkPeer } | undefined;
  #closed = false;
  /** Opened once: a reopen after a drop must find the same disk. */
  #opened = false;

  constructor(c: RemoteConnector, p: OpenParams) {
    this.#c = c;
    this.#p = p;
  }

  /** Opens the disk on the current link (waiting for one, retried when the link drops). */
  async open(): Promise<{ stacked: boolean }> {
    const r = await this.#c.call('disk.open', this.#p);
    const out = r.result as { handle: number; virtualSize: number; stacked: boolean };
    if (this.#opened && out.virtualSize !== this.info.virtualSize)
      throw new LinkProtocolError('the reopened disk changed size; the run must start again');
    this.info = { ...this.info, virtualSize: out.virtualSize };
    this.#opened = true;
    this.#handle = { id: out.handle, peer: r.peer };
    return { stacked: out.stacked };
  }

  async map(offset: number, length: number) {
    const out = [];
    let at = offset;
    while (at < offset + length) {
      const body = await this.#withHandle((handle) =>
        this.#call('disk.map', { handle, offset: at, length: offset + length - at }),
      );
      const extents = decodeExtents(body, at, offset + length - at);
      if (extents.length === 0) throw new LinkProtocolError('the connector answered an empty map');
      out.push(...extents);
      at = extents[extents.length - 1]!.offset + extents[extents.length - 1]!.length;
    }
    return out;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (length <= MAX_READ)
      return this.#withHandle((handle) => this.#call('disk.read', { handle, offset, length }));
    const parts: Buffer[] = [];
    for (let at = offset; at < offset + length; at += MAX_READ)
      parts.push(await this.read(at, Math.min(MAX_READ, offset + length - at)));
    return Buffer.concat(parts);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const h = this.#handle;
    this.#handle = undefined;
    if (h && !h.peer.closed) await h.peer.call('disk.close', { handle: h.id }).catch(() => undefined);
  }

  async #call(method: string, params: Record<string, unknown>): Promise<Buffer> {
    const h = this.#handle!;
    const r = await h.peer.call(method, params);
    if (method === 'disk.read' && r.body.length !== params.length)
      throw new LinkProtocolError(
        `the connector answered ${r.body.length} bytes for ${String(params.length)}`,
      );
    return r.body;
  }

  async #withHandle<T>(fn: (handle: number) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new LinkDownError('the disk was closed');
      if (!this.#handle || this.#handle.peer.closed) await this.open();
      try {
        return await fn(this.#handle!.id);
      } catch (err) {
        const fe = toFerryError(err);
        if (!isLinkLoss(fe) || attempt >= MAX_CALL_RETRIES) throw fe;
        this.#handle = undefined;
      }
    }
  }
}
