/**
 * The server end of a link: a Connector whose roles are calls to a remote connector
 * process. The run executor uses it exactly like a built-in connector.
 *
 * A dropped link does not fail a run: every call waits (bounded) for the connector to
 * come back and is retried (LinkSlot) — snapshot, release and sweep are idempotent per
 * run, and an open disk is reopened on the new link and the read that failed is sent
 * again (LinkDiskLayer), so a run resumes where the link dropped instead of starting over.
 */
import { LayeredDisk, type Disk, type DiskLayer } from '../../disk/index.js';
import { toFerryError } from '../../errors/index.js';
import { LinkDiskLayer, LinkSlot, RECONNECT_WAIT_MS, type LinkPeer } from '../../link/index.js';
import type {
  Connector,
  ConnectorDescriptor,
  InventoryServer,
  SnapshotOptions,
  SourceSnapshot,
} from '../types.js';

export { RECONNECT_WAIT_MS };

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
  readonly #slot: LinkSlot;

  constructor(descriptor: ConnectorDescriptor, o: { reconnectWaitMs?: number; roles?: RemoteRoles } = {}) {
    this.descriptor = descriptor;
    this.#slot = new LinkSlot(() => `connector ${this.descriptor.connectorId}`, {
      ...(o.reconnectWaitMs !== undefined ? { reconnectWaitMs: o.reconnectWaitMs } : {}),
      details: { connectorId: descriptor.connectorId },
    });
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
    return this.#slot.connected;
  }

  /** A (re)connected link of this connector: calls waiting for one go on. */
  attach(peer: LinkPeer, descriptor?: ConnectorDescriptor, roles?: RemoteRoles): void {
    if (descriptor) this.descriptor = descriptor;
    if (roles) this.source = this.#source(roles);
    this.#slot.attach(peer);
  }

  /** Drops the link (DisassociateConnector, server stop). */
  detach(): void {
    this.#slot.detach();
  }

  /** One call, retried across reconnections; says which link answered it. */
  call(method: string, params: object, body?: Buffer) {
    return this.#slot.call(method, params, body);
  }

  async #collect(): Promise<InventoryServer[]> {
    // A connector that restarts between collect and page forgets the collection: collect again.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#collectOnce();
      } catch (err) {
        const fe = toFerryError(err);
        if (fe.code !== 'FERRY_NOT_FOUND' || fe.details.resource !== 'inventory' || attempt >= 3) throw fe;
      }
    }
  }

  async #collectOnce(): Promise<InventoryServer[]> {
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
    const layer = new LinkDiskLayer(this.#slot, 'disk', {
      vmId,
      index,
      ...(snapshot ? { snapshot } : {}),
      changed,
    });
    const opened = await layer.open().catch(async (err: unknown) => {
      await base?.close();
      throw err;
    });
    const name = `connector:${this.descriptor.connectorId}/${vmId}/${index}`;
    if (opened.stacked === true && base) return new LayeredDisk([layer, base], [name, 'base']);
    await base?.close();
    return new LayeredDisk([layer], [name]);
  }
}
