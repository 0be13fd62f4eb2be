/**
 * Repositories: every statement Ferry runs, grouped by table. They work on any executor, so
 * the same calls run alone or inside `Database.transaction`:
 *
 *   await db.transaction(async (tx) => { const r = repositories(tx); … });
 */
import { keysetPage, type Page, type PageQuery } from './page.js';
import type {
  AccessKeyRecord,
  AppRecord,
  ConnectorRecord,
  JobRecord,
  RunRecord,
  ServerRecord,
  InstanceRecord,
  TemplateRecord,
  EnrolmentTokenRecord,
  LaunchHostRecord,
} from './records.js';
import { atomically, observerOf } from './observe.js';
import { eventRepositories } from './repos-events.js';
import type { Table } from './table.js';
import * as t from './tables.js';
import type { SqlExecutor, SqlValue } from './types.js';

type Patch<R> = Partial<R>;
type Guard<R> = { readonly field: keyof R & string; readonly in: readonly string[] };

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

/**
 * Insert and update of a table whose changes an observer may capture (observe.ts): when
 * the executor carries one that watches the written fields, the write and its capture run
 * in one transaction with the row before and after; otherwise the plain statement runs.
 */
function watched<R extends object>(x: SqlExecutor, table: Table<R>) {
  return {
    async insert(r: R): Promise<void> {
      const o = observerOf(x);
      if (!o?.watches(table.name, Object.keys(r))) return table.insert(x, r);
      await atomically(x, async (tx) => {
        await table.insert(tx, r);
        await o.changed(tx, table.name, undefined, r);
      });
    },
    async update(
      id: string,
      p: Patch<R>,
      onlyIf?: { readonly field: keyof R & string; readonly in: readonly SqlValue[] },
    ): Promise<number> {
      const o = observerOf(x);
      if (!o?.watches(table.name, Object.keys(p))) return table.update(x, id, p, onlyIf);
      return atomically(x, async (tx) => {
        const before = await table.get(tx, id);
        const n = await table.update(tx, id, p, onlyIf);
        const after = n > 0 && before ? await table.get(tx, id) : undefined;
        if (before && after) await o.changed(tx, table.name, before, after);
        return n;
      });
    },
  };
}

export function repositories(x: SqlExecutor) {
  const jobs = watched(x, t.jobs);
  const runs = watched(x, t.runs);
  const apps = watched(x, t.apps);
  const instances = watched(x, t.instances);
  return {
    ...eventRepositories(x),
    settings: {
      async get(name: string): Promise<string | undefined> {
        const row = await x.get<{ value: string }>('SELECT value FROM settings WHERE name = ?', [name]);
        return row?.value;
      },
      async set(name: string, value: string): Promise<void> {
        await x.run(
          'INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
          [name, value],
        );
      },
    },

    keys: {
      insert: (r: AccessKeyRecord) => t.accessKeys.insert(x, r),
      get: (id: string) => t.accessKeys.get(x, id),
      list: () => t.accessKeys.select(x, '', [], 'ORDER BY created_at, access_key_id'),
      update: (id: string, p: Patch<AccessKeyRecord>) => t.accessKeys.update(x, id, p),
    },

    connectors: {
      /** Registers or re-registers; `associatedOn` and the certificate of an existing row are kept. */
      upsert: (r: ConnectorRecord) =>
        t.connectors.upsert(x, r, ['connectorId'], ['associatedOn', 'certSerial']),
      insert: (r: ConnectorRecord) => t.connectors.insert(x, r),
      get: (id: string) => t.connectors.get(x, id),
      update: (id: string, p: Patch<ConnectorRecord>) => t.connectors.update(x, id, p),
      page: (q: PageQuery) => keysetPage(x, t.connectors, 'connectorId', 'disassociated_at IS NULL', [], q),
      active: () => t.connectors.select(x, 'disassociated_at IS NULL', [], 'ORDER BY connector_id'),
    },

    servers: {
      /** Inserts or refreshes a catalog entry, keeping its replication job link. */
      upsert: (r: ServerRecord) =>
        t.servers.upsert(x, r, ['serverId'], ['replicationJobId', 'replicationJobTerminated']),
      get: (id: string) => t.servers.get(x, id),
      update: (id: string, p: Patch<ServerRecord>) => t.servers.update(x, id, p),
      page(
        q: PageQuery,
        only?: readonly { vmManagerId: string; vmId: string }[],
      ): Promise<Page<ServerRecord>> {
        if (!only) return keysetPage(x, t.servers, 'sortKey', '', [], q);
        if (only.length === 0) return Promise.resolve({ items: [] });
        const where = only.map(() => '(vm_manager_id = ? AND vm_id = ?)').join(' OR ');
        return keysetPage(
          x,
          t.servers,
          'sortKey',
          where,
          only.flatMap((a) => [a.vmManagerId, a.vmId]),
          q,
        );
      },
      forConnector: (connectorId: string) =>
        t.servers.select(x, 'connector_id = ?', [connectorId], 'ORDER BY server_id'),
      async delete(ids: readonly string[]): Promise<number> {
        if (ids.length === 0) return 0;
        return (await x.run(`DELETE FROM servers WHERE server_id IN (${placeholders(ids.length)})`, ids))
          .changes;
      },
      async deleteAll(): Promise<number> {
        return (await x.run('DELETE FROM servers')).changes;
      },
      async count(): Promise<number> {
        const row = await x.get<{ n: number }>('SELECT COUNT(*) AS n FROM servers');
        return Number(row?.n ?? 0);
      },
    },

    jobs: {
      insert: (r: JobRecord) => jobs.insert(r),
      get: (id: string) => t.jobs.get(x, id),
      update: (id: string, p: Patch<JobRecord>, onlyIf?: Guard<JobRecord>) => jobs.update(id, p, onlyIf),
      page: (q: PageQuery, states: readonly string[]) =>
        keysetPage(x, t.jobs, 'createdAt', `state IN (${placeholders(states.length)})`, states, q),
      forServer: (serverId: string, states: readonly string[]) =>
        t.jobs.select(x, `server_id = ? AND state IN (${placeholders(states.length)})`, [
          serverId,
          ...states,
        ]),
      forApp: (appId: string, states: readonly string[]) =>
        t.jobs.select(x, `app_id = ? AND state IN (${placeholders(states.length)})`, [appId, ...states]),
      /** Jobs in `states` whose next run is due at `now`, oldest first. */
      due: (now: number, states: readonly string[], limit: number) =>
        t.jobs.select(
          x,
          `next_run_at IS NOT NULL AND next_run_at <= ? AND state IN (${placeholders(states.length)})`,
          [now, ...states, limit],
          'ORDER BY next_run_at, replication_job_id LIMIT ?',
        ),
      async countByState(): Promise<Record<string, number>> {
        const rows = await x.all<{ state: string; n: number }>(
          'SELECT state, COUNT(*) AS n FROM replication_jobs GROUP BY state',
        );
        return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
      },
    },

    runs: {
      insert: (r: RunRecord) => runs.insert(r),
      get: (id: string) => t.runs.get(x, id),
      update: (id: string, p: Patch<RunRecord>, onlyIf?: Guard<RunRecord>) => runs.update(id, p, onlyIf),
      pageForJob: (jobId: string, q: PageQuery) =>
        keysetPage(x, t.runs, 'createdAt', 'replication_job_id = ?', [jobId], q),
      forJob: (jobId: string, states: readonly string[]) =>
        t.runs.select(
          x,
          `replication_job_id = ? AND state IN (${placeholders(states.length)})`,
          [jobId, ...states],
          'ORDER BY created_at, replication_run_id',
        ),
      inStates: (states: readonly string[]) =>
        t.runs.select(
          x,
          `state IN (${placeholders(states.length)})`,
          states,
          'ORDER BY scheduled_start_time, replication_run_id',
        ),
      async countSince(jobId: string, type: string, since: number): Promise<number> {
        const row = await x.get<{ n: number }>(
          'SELECT COUNT(*) AS n FROM replication_runs WHERE replication_job_id = ? AND type = ? AND created_at >= ?',
          [jobId, type, since],
        );
        return Number(row?.n ?? 0);
      },
      /** Completed runs of a job with an image, newest first (for retention). */
      withImages: (jobId: string) =>
        t.runs.select(
          x,
          "replication_job_id = ? AND state = 'COMPLETED' AND ami_id IS NOT NULL",
          [jobId],
          'ORDER BY completed_time DESC, replication_run_id DESC',
        ),
    },

    apps: {
      insert: (r: AppRecord) => apps.insert(r),
      get: (id: string) => t.apps.get(x, id),
      update: (id: string, p: Patch<AppRecord>) => apps.update(id, p),
      all: () => t.apps.select(x, '', [], 'ORDER BY created_at, app_id'),
      async byClientToken(token: string): Promise<AppRecord | undefined> {
        return (await t.apps.select(x, 'client_token = ?', [token]))[0];
      },
      page(q: PageQuery, ids?: readonly string[]): Promise<Page<AppRecord>> {
        if (!ids) return keysetPage(x, t.apps, 'createdAt', '', [], q);
        if (ids.length === 0) return Promise.resolve({ items: [] });
        return keysetPage(x, t.apps, 'createdAt', `app_id IN (${placeholders(ids.length)})`, ids, q);
      },
      async delete(id: string): Promise<number> {
        return (await x.run('DELETE FROM apps WHERE app_id = ?', [id])).changes;
      },
    },

    instances: {
      insert: (r: InstanceRecord) => instances.insert(r),
      get: (id: string) => t.instances.get(x, id),
      update: (id: string, p: Patch<InstanceRecord>) => instances.update(id, p),
      all: () => t.instances.select(x, '1 = 1', [], 'ORDER BY created_at, instance_id'),
      forApp: (appId: string) =>
        t.instances.select(x, 'app_id = ?', [appId], 'ORDER BY created_at, instance_id'),
      onHost: (hostId: string) =>
        t.instances.select(x, 'host_id = ?', [hostId], 'ORDER BY created_at, instance_id'),
    },

    launchHosts: {
      insert: (r: LaunchHostRecord) => t.launchHosts.insert(x, r),
      get: (id: string) => t.launchHosts.get(x, id),
      update: (id: string, p: Patch<LaunchHostRecord>) => t.launchHosts.update(x, id, p),
      all: () => t.launchHosts.select(x, '1 = 1', [], 'ORDER BY enrolled_at, host_id'),
    },

    enrolmentTokens: {
      insert: (r: EnrolmentTokenRecord) => t.enrolmentTokens.insert(x, r),
      get: (hash: string) => t.enrolmentTokens.get(x, hash),
      /** Marks a token used, only if unused and unexpired; false otherwise (single use). */
      async use(hash: string, enrolledId: string, now: number): Promise<boolean> {
        const r = await x.run(
          'UPDATE enrolment_tokens SET used_at = ?, used_by = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?',
          [now, enrolledId, hash, now],
        );
        return r.changes === 1;
      },
    },

    templates: {
      insert: (r: TemplateRecord) => t.templates.insert(x, r),
      get: (id: string) => t.templates.get(x, id),
      async latest(appId: string, kind: string): Promise<TemplateRecord | undefined> {
        const rows = await t.templates.select(
          x,
          'app_id = ? AND kind = ?',
          [appId, kind],
          'ORDER BY created_at DESC, template_id DESC LIMIT 1',
        );
        return rows[0];
      },
    },
  };
}

export type Repositories = ReturnType<typeof repositories>;
