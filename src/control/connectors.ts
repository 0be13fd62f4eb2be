/**
 * Connectors as the control plane sees them: registered records with a heartbeat (what
 * GetConnectors shows) and, for connectors running in this process, the live adapter the
 * catalog and the run executor call. A connector is *usable* when it is associated,
 * healthy and reachable.
 */
import {
  CONNECTOR_CAPABILITIES,
  RemoteConnector,
  VM_MANAGER_TYPES,
  type Connector,
  type ConnectorCapability,
  type ConnectorDescriptor,
  type VmManagerType,
} from '../connectors/index.js';
import { repositories, type Database } from '../db/index.js';
import { NoConnectorsError, NotFoundError } from '../errors/index.js';
import type { Clock } from './clock.js';
import { decodeToken, encodeToken, pageSize } from './paging.js';
import { connectorView, HEARTBEAT_TIMEOUT_MS } from './views.js';
import type { LinkPeer } from '../link/index.js';

export class ConnectorService {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #live = new Map<string, Connector>();

  constructor(db: Database, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  /** Registers (or re-registers) a connector running in this process and records a heartbeat. */
  async attach(connector: Connector): Promise<void> {
    this.#live.set(connector.descriptor.connectorId, connector);
    await this.#register(connector.descriptor);
  }

  detach(connectorId: string): void {
    const live = this.#live.get(connectorId);
    if (live instanceof RemoteConnector) live.detach();
    this.#live.delete(connectorId);
  }

  /**
   * A remote connector's link came up (link-server.ts): the connector it announces (its
   * id is the certificate's, never the announcement's) is used through the link from now
   * on; runs waiting for it after a drop go on.
   */
  async attachRemote(
    connectorId: string,
    hello: Record<string, unknown>,
    peer: LinkPeer,
    ip?: string,
  ): Promise<void> {
    const text = (v: unknown, max: number) =>
      typeof v === 'string' && v.length > 0 ? v.slice(0, max) : undefined;
    const caps = Array.isArray(hello.capabilities) ? hello.capabilities : [];
    const type = text(hello.vmManagerType, 32);
    const descriptor: ConnectorDescriptor = {
      connectorId,
      kind: 'remote',
      version: text(hello.version, 64) ?? 'unknown',
      capabilities: caps.filter((c): c is ConnectorCapability =>
        (CONNECTOR_CAPABILITIES as readonly unknown[]).includes(c),
      ),
      vmManagerId: text(hello.vmManagerId, 256) ?? connectorId,
      vmManagerName: text(hello.vmManagerName, 256) ?? 'remote',
      ...(type && (VM_MANAGER_TYPES as readonly string[]).includes(type)
        ? { vmManagerType: type as VmManagerType }
        : {}),
      ...(ip ? { ipAddress: ip.replace(/^::ffff:/, '') } : {}),
      ...(Number.isInteger(hello.maxConcurrentRuns) &&
      (hello.maxConcurrentRuns as number) >= 1 &&
      (hello.maxConcurrentRuns as number) <= 1000
        ? { maxConcurrentRuns: hello.maxConcurrentRuns as number }
        : {}),
    };
    const r = (typeof hello.roles === 'object' && hello.roles !== null ? hello.roles : {}) as Record<
      string,
      unknown
    >;
    const roles = { snapshot: r.snapshot === true, release: r.release === true, sweep: r.sweep === true };
    let remote = this.#live.get(connectorId);
    if (!(remote instanceof RemoteConnector)) {
      remote = new RemoteConnector(descriptor, { roles });
      this.#live.set(connectorId, remote);
    }
    (remote as RemoteConnector).attach(peer, descriptor, roles);
    await this.#register(descriptor);
  }

  async heartbeat(connectorId: string): Promise<void> {
    const n = await repositories(this.#db).connectors.update(connectorId, {
      lastHeartbeatAt: this.#clock.now(),
    });
    if (n === 0)
      throw new NotFoundError(`no connector ${connectorId}`, { resource: 'connector', connectorId });
  }

  async getConnectors(input: { nextToken?: string; maxResults?: number }) {
    const page = await repositories(this.#db).connectors.page({
      after: decodeToken('connectors', input.nextToken),
      limit: pageSize(input.maxResults),
    });
    const now = this.#clock.now();
    return {
      connectorList: page.items.map((c) => connectorView(c, now)),
      nextToken: encodeToken('connectors', page.next),
    };
  }

  async disassociateConnector(input: { connectorId: string }): Promise<Record<string, never>> {
    const r = repositories(this.#db);
    const c = await r.connectors.get(input.connectorId);
    if (!c || c.disassociatedAt !== null) {
      throw new NotFoundError(`no connector ${input.connectorId} is associated`, {
        resource: 'connector',
        connectorId: input.connectorId,
      });
    }
    await r.connectors.update(input.connectorId, { disassociatedAt: this.#clock.now() });
    // A remote connector's link is cut now; its certificate is refused from now on.
    if (c.kind === 'remote') this.detach(input.connectorId);
    return {};
  }

  /**
   * Live, associated, healthy connectors whose link (if remote) is up: what a catalog
   * import asks. A remote connector whose link just dropped is left out here (an import
   * would wait for it), but runs still reach it through `require` and wait for it to return.
   */
  async usable(): Promise<Connector[]> {
    return (await this.#healthy()).filter((c) => !(c instanceof RemoteConnector) || c.connected);
  }

  async #healthy(): Promise<Connector[]> {
    const now = this.#clock.now();
    const records = await repositories(this.#db).connectors.active();
    return records
      .filter((c) => now - c.lastHeartbeatAt <= HEARTBEAT_TIMEOUT_MS)
      .map((c) => this.#live.get(c.connectorId))
      .filter((c): c is Connector => c !== undefined);
  }

  /** The usable connector with this id, or FERRY_NO_CONNECTORS saying why not. */
  async require(connectorId: string): Promise<Connector> {
    const c = (await this.#healthy()).find((x) => x.descriptor.connectorId === connectorId);
    if (!c) {
      throw new NoConnectorsError(
        `connector ${connectorId} is not available (disassociated, unhealthy, or not running in this server)`,
        { connectorId },
      );
    }
    return c;
  }

  /** The run cap a live connector announced (per server process), if any. */
  capOf(connectorId: string): number | undefined {
    return this.#live.get(connectorId)?.descriptor.maxConcurrentRuns;
  }

  async healthCounts(): Promise<{ healthy: number; unhealthy: number }> {
    const now = this.#clock.now();
    const records = await repositories(this.#db).connectors.active();
    const healthy = records.filter((c) => now - c.lastHeartbeatAt <= HEARTBEAT_TIMEOUT_MS).length;
    return { healthy, unhealthy: records.length - healthy };
  }

  async #register(d: ConnectorDescriptor): Promise<void> {
    const now = this.#clock.now();
    await repositories(this.#db).connectors.upsert({
      connectorId: d.connectorId,
      kind: d.kind,
      version: d.version,
      capabilities: [...d.capabilities],
      vmManagerId: d.vmManagerId,
      vmManagerName: d.vmManagerName,
      vmManagerType: d.vmManagerType ?? null,
      ipAddress: d.ipAddress ?? null,
      macAddress: d.macAddress ?? null,
      associatedOn: now,
      lastHeartbeatAt: now,
      disassociatedAt: null,
      certSerial: null,
    });
  }
}
