/**
 * The server catalog: what the connectors report, kept in the database.
 *
 * ImportServerCatalog is asynchronous on AWS (the catalog moves to IMPORTING and callers
 * poll GetServers). Ferry starts the import in the background and waits up to
 * IMPORT_WAIT_MS before answering, so a small catalog is already AVAILABLE when the call
 * returns and a big one keeps importing while callers poll, as on AWS.
 *
 * Server ids are derived from (VM manager, VM id), so a server keeps its id — and its
 * jobs and apps keep pointing at it — across DeleteServerCatalog and re-imports.
 */
import type { Connector } from '../connectors/index.js';
import { repositories, type Database, type ServerRecord } from '../db/index.js';
import { NoConnectorsError, OperationNotPermittedError, toFerryError } from '../errors/index.js';
import type { Clock } from './clock.js';
import type { ConnectorService } from './connectors.js';
import { serverIdFor } from './ids.js';
import { decodeToken, encodeToken, pageSize } from './paging.js';
import { serverView } from './views.js';

export const CATALOG_STATUSES = ['NOT_IMPORTED', 'IMPORTING', 'AVAILABLE', 'DELETED', 'EXPIRED'] as const;
export type CatalogStatus = (typeof CATALOG_STATUSES)[number];

/** How long ImportServerCatalog waits for the import before answering. */
export const IMPORT_WAIT_MS = 2000;

const STATUS_KEY = 'catalog.status';
const MODIFIED_KEY = 'catalog.lastModifiedOn';
const ERROR_KEY = 'catalog.lastError';

export interface CatalogLog {
  error(obj: object, msg: string): void;
}

export class CatalogService {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #connectors: ConnectorService;
  readonly #log: CatalogLog | undefined;
  #importing: Promise<void> | undefined;

  constructor(db: Database, clock: Clock, connectors: ConnectorService, log?: CatalogLog) {
    this.#db = db;
    this.#clock = clock;
    this.#connectors = connectors;
    this.#log = log;
  }

  async importServerCatalog(): Promise<Record<string, never>> {
    if (!this.#importing) {
      const connectors = await this.#connectors.usable();
      if (connectors.length === 0) {
        throw new NoConnectorsError('no healthy connector is available to collect the server inventory');
      }
      const r = repositories(this.#db);
      const before = (await r.settings.get(STATUS_KEY)) ?? 'NOT_IMPORTED';
      await r.settings.set(STATUS_KEY, 'IMPORTING');
      this.#importing = this.#import(connectors, before).finally(() => (this.#importing = undefined));
    }
    const running = this.#importing;
    await Promise.race([
      running.catch(() => undefined),
      new Promise((r) => setTimeout(r, IMPORT_WAIT_MS).unref()),
    ]);
    return {};
  }

  /** Resolves when no import is running (tests and shutdown). */
  async idle(): Promise<void> {
    await this.#importing?.catch(() => undefined);
  }

  async getServers(input: {
    nextToken?: string;
    maxResults?: number;
    vmServerAddressList?: { vmManagerId?: string; vmId?: string }[];
  }) {
    const r = repositories(this.#db);
    const only = input.vmServerAddressList?.map((a) => ({
      vmManagerId: a.vmManagerId ?? '',
      vmId: a.vmId ?? '',
    }));
    // Independent reads: in parallel (PostgreSQL runs them on separate pooled connections).
    const [page, modified, status] = await Promise.all([
      r.servers.page(
        { after: decodeToken('servers', input.nextToken), limit: pageSize(input.maxResults) },
        only,
      ),
      r.settings.get(MODIFIED_KEY),
      r.settings.get(STATUS_KEY),
    ]);
    return {
      ...(modified ? { lastModifiedOn: Number(modified) } : {}),
      serverCatalogStatus: (status ?? 'NOT_IMPORTED') as CatalogStatus,
      serverList: page.items.map(serverView),
      nextToken: encodeToken('servers', page.next),
    };
  }

  async deleteServerCatalog(): Promise<Record<string, never>> {
    if (this.#importing)
      throw new OperationNotPermittedError(
        'the server catalog is being imported; try again when it is AVAILABLE',
      );
    await this.#db.transaction(async (tx) => {
      const r = repositories(tx);
      await r.servers.deleteAll();
      await r.settings.set(STATUS_KEY, 'DELETED');
      await r.settings.set(MODIFIED_KEY, String(this.#clock.now()));
    });
    return {};
  }

  async get(serverId: string): Promise<ServerRecord | undefined> {
    return repositories(this.#db).servers.get(serverId);
  }

  async #import(connectors: readonly Connector[], before: string): Promise<void> {
    try {
      for (const c of connectors) await this.#importFrom(c);
      await this.#db.transaction(async (tx) => {
        const r = repositories(tx);
        await r.settings.set(STATUS_KEY, 'AVAILABLE');
        await r.settings.set(MODIFIED_KEY, String(this.#clock.now()));
        await r.settings.set(ERROR_KEY, '');
      });
    } catch (err) {
      const fe = toFerryError(err);
      this.#log?.error({ err: fe }, 'server catalog import failed');
      const r = repositories(this.#db);
      await r.settings
        .set(STATUS_KEY, before === 'IMPORTING' ? 'NOT_IMPORTED' : before)
        .catch(() => undefined);
      await r.settings.set(ERROR_KEY, `${fe.code}: ${fe.message}`).catch(() => undefined);
      throw fe;
    }
  }

  async #importFrom(c: Connector): Promise<void> {
    const d = c.descriptor;
    const inventory = await c.inventory.collect();
    const now = this.#clock.now();
    await this.#db.transaction(async (tx) => {
      const r = repositories(tx);
      const seen = new Set<string>();
      for (const s of inventory) {
        const serverId = serverIdFor(d.vmManagerId, s.vmId);
        seen.add(serverId);
        await r.servers.upsert({
          serverId,
          connectorId: d.connectorId,
          vmManagerId: d.vmManagerId,
          vmId: s.vmId,
          sortKey: `${d.vmManagerId}/${s.vmId}`,
          vmName: s.vmName,
          vmManagerName: d.vmManagerName,
          vmManagerType: s.vmManagerType ?? d.vmManagerType ?? null,
          vmPath: s.vmPath,
          facts: s.facts,
          replicationJobId: null,
          replicationJobTerminated: false,
          importedAt: now,
        });
      }
      // Servers the connector no longer reports leave the catalog (their jobs keep a copy).
      const gone = (await r.servers.forConnector(d.connectorId)).filter((s) => !seen.has(s.serverId));
      await r.servers.delete(gone.map((s) => s.serverId));
    });
  }
}
