/**
 * Applications: named sets of server groups, each a set of catalog servers. An app's
 * replication and launch status are derived from its jobs and configurations when read,
 * so they never disagree with the jobs themselves.
 */
import { repositories, type AppRecord, type Database, type Repositories } from '../db/index.js';
import { DatabaseConflictError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import type { Clock } from './clock.js';
import { newId } from './ids.js';
import { DEFAULT_APPS_PAGE_SIZE, decodeToken, encodeToken, pageSize } from './paging.js';
import { LIVE_JOB_STATES, OPEN_RUN_STATES } from './states.js';
import { serverView, type ServerView } from './views.js';

export interface StoredGroup {
  readonly serverGroupId: string;
  readonly name?: string;
  readonly serverIds: readonly string[];
}

export interface AppBody {
  readonly name: string;
  readonly description?: string;
  readonly roleName?: string;
  readonly importedAppId?: string;
  readonly serverGroups: readonly StoredGroup[];
  readonly tags: readonly { key: string; value?: string }[];
  readonly launchStatusMessage?: string;
  /** The latest LaunchApp / TerminateApp (launches.ts). */
  readonly launch?: AppLaunchState;
}

export interface AppLaunchState {
  /** An SMS AppLaunchStatus. */
  readonly status: string;
  readonly message: string;
  readonly instanceIds: readonly string[];
  readonly latestLaunchTime?: number;
  /** What the instances are for (launches.ts LaunchPurpose); absent on older records. */
  readonly purpose?: 'launch' | 'test' | 'cutover';
}

export interface ServerGroupInput {
  serverGroupId?: string;
  name?: string;
  serverList?: { serverId?: string }[];
}

export interface AppInput {
  name?: string;
  description?: string;
  roleName?: string;
  clientToken?: string;
  serverGroups?: ServerGroupInput[];
  tags?: { key?: string; value?: string }[];
}

export class AppService {
  readonly #db: Database;
  readonly #clock: Clock;

  constructor(db: Database, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  async createApp(input: AppInput) {
    const r = repositories(this.#db);
    if (input.clientToken) {
      // Idempotency: the same token returns the app it created (SMS's clientToken contract).
      const prior = await r.apps.byClientToken(input.clientToken);
      if (prior) return this.#full(r, prior);
    }
    const appId = newId.app();
    const now = this.#clock.now();
    const body: AppBody = {
      name: input.name ?? appId,
      ...(input.description !== undefined ? { description: input.description } : {}),
      ...(input.roleName !== undefined ? { roleName: input.roleName } : {}),
      serverGroups: await groupsFrom(r, input.serverGroups ?? []),
      tags: tagsFrom(input.tags ?? []),
    };
    const record: AppRecord = {
      appId,
      clientToken: input.clientToken ?? null,
      body,
      replicationConfig: null,
      launchConfig: null,
      validationConfig: null,
      validationOutputs: [],
      createdAt: now,
      updatedAt: now,
    };
    try {
      await r.apps.insert(record);
    } catch (err) {
      // Two requests with one clientToken at once: the loser returns the winner's app.
      if (err instanceof DatabaseConflictError && input.clientToken) {
        const prior = await r.apps.byClientToken(input.clientToken);
        if (prior) return this.#full(r, prior);
      }
      throw err;
    }
    return this.#full(r, record);
  }

  async getApp(input: { appId: string }) {
    const r = repositories(this.#db);
    return this.#full(r, await requireApp(r, input.appId));
  }

  async listApps(input: { appIds?: string[]; nextToken?: string; maxResults?: number }) {
    const r = repositories(this.#db);
    const page = await r.apps.page(
      {
        after: decodeToken('apps', input.nextToken),
        limit: pageSize(input.maxResults, DEFAULT_APPS_PAGE_SIZE),
      },
      input.appIds,
    );
    const apps = [];
    for (const a of page.items) apps.push(await this.summary(r, a));
    return { apps, nextToken: encodeToken('apps', page.next) };
  }

  async updateApp(input: AppInput & { appId: string }) {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    const old = app.body as AppBody;
    const body: AppBody = {
      ...old,
      ...(input.name !== undefined ? { name: input.name } : {}),
      ...(input.description !== undefined ? { description: input.description } : {}),
      ...(input.roleName !== undefined ? { roleName: input.roleName } : {}),
      ...(input.serverGroups !== undefined ? { serverGroups: await groupsFrom(r, input.serverGroups) } : {}),
      ...(input.tags !== undefined ? { tags: tagsFrom(input.tags) } : {}),
    };
    const updatedAt = this.#clock.now();
    await r.apps.update(app.appId, { body, updatedAt });
    return this.#full(r, { ...app, body, updatedAt });
  }

  /** Deletes the app; its jobs are deleted by the caller first when forceStopAppReplication. */
  async deleteApp(input: { appId: string }): Promise<Record<string, never>> {
    const r = repositories(this.#db);
    await requireApp(r, input.appId);
    await r.apps.delete(input.appId);
    return {};
  }

  /**
   * Ferry has no AWS Migration Hub to import applications from: the call succeeds and
   * changes nothing (applications are made with CreateApp). Documented deviation.
   */
  async importAppCatalog(): Promise<Record<string, never>> {
    return {};
  }

  /** The AppSummary of one app, with statuses derived from its jobs and configurations. */
  async summary(r: Repositories, app: AppRecord) {
    const body = app.body as AppBody;
    const jobs = await r.jobs.forApp(app.appId, [...LIVE_JOB_STATES, 'DELETING']);
    let latestReplicationTime: number | undefined;
    let withImage = 0;
    let running = 0;
    let failed = 0;
    let stopping = 0;
    for (const j of jobs) {
      if (j.latestAmiId) withImage++;
      if (j.state === 'DELETING') stopping++;
      if (j.state === 'FAILED' || j.state === 'PAUSED_ON_FAILURE') failed++;
      if ((await r.runs.forJob(j.replicationJobId, OPEN_RUN_STATES)).length > 0) running++;
      const latest = (await r.runs.withImages(j.replicationJobId))[0];
      if (latest?.completedTime && (latestReplicationTime ?? 0) < latest.completedTime) {
        latestReplicationTime = latest.completedTime;
      }
    }
    const configured = app.replicationConfig !== null;
    const replicationStatus = !configured
      ? 'READY_FOR_CONFIGURATION'
      : jobs.length === 0
        ? 'READY_FOR_REPLICATION'
        : stopping > 0
          ? 'REPLICATION_STOPPING'
          : running > 0
            ? withImage > 0
              ? 'DELTA_REPLICATION_IN_PROGRESS'
              : 'REPLICATION_IN_PROGRESS'
            : failed > 0
              ? 'REPLICATION_FAILED'
              : withImage === jobs.length
                ? 'REPLICATED'
                : withImage > 0
                  ? 'PARTIALLY_REPLICATED'
                  : 'REPLICATION_PENDING';
    const launchConfigured = app.launchConfig !== null;
    return {
      appId: app.appId,
      ...(body.importedAppId ? { importedAppId: body.importedAppId } : {}),
      name: body.name,
      ...(body.description !== undefined ? { description: body.description } : {}),
      status: 'ACTIVE',
      replicationConfigurationStatus: configured ? 'CONFIGURED' : 'NOT_CONFIGURED',
      replicationStatus,
      replicationStatusMessage: replicationMessage(replicationStatus, jobs.length, withImage),
      ...(latestReplicationTime !== undefined ? { latestReplicationTime } : {}),
      launchConfigurationStatus: launchConfigured ? 'CONFIGURED' : 'NOT_CONFIGURED',
      launchStatus:
        body.launch?.status ?? (launchConfigured ? 'READY_FOR_LAUNCH' : 'READY_FOR_CONFIGURATION'),
      launchStatusMessage:
        body.launch?.message ??
        body.launchStatusMessage ??
        (launchConfigured ? 'Ready for launch.' : 'Launch configuration needed.'),
      // SMS reports the CloudFormation stack of the latest launch; Ferry's "stack" is the
      // set of instances: stackId lists their ids (docs/api-compatibility.md).
      ...(body.launch?.latestLaunchTime !== undefined
        ? {
            launchDetails: {
              latestLaunchTime: body.launch.latestLaunchTime,
              stackName: `ferry-${app.appId}`,
              stackId: body.launch.instanceIds.join(','),
            },
          }
        : {}),
      creationTime: app.createdAt,
      lastModified: app.updatedAt,
      ...(body.roleName !== undefined ? { roleName: body.roleName } : {}),
      totalServerGroups: body.serverGroups.length,
      totalServers: body.serverGroups.reduce((n, g) => n + g.serverIds.length, 0),
    };
  }

  async #full(r: Repositories, app: AppRecord) {
    const body = app.body as AppBody;
    return {
      appSummary: await this.summary(r, app),
      serverGroups: await expandGroups(r, body.serverGroups),
      tags: body.tags.map((t) => ({ ...t })),
    };
  }
}

function replicationMessage(status: string, jobs: number, withImage: number): string {
  if (status === 'READY_FOR_CONFIGURATION')
    return 'Configure replication with PutAppReplicationConfiguration.';
  if (status === 'READY_FOR_REPLICATION') return 'Start replication with StartAppReplication.';
  return `${withImage} of ${jobs} servers replicated.`;
}

export async function requireApp(r: Repositories, appId: string): Promise<AppRecord> {
  const app = await r.apps.get(appId);
  if (!app) throw new NotFoundError(`no application ${appId}`, { resource: 'app', appId });
  return app;
}

/** Server groups as the API shows them: servers expanded from the catalog. */
export async function expandGroups(r: Repositories, groups: readonly StoredGroup[]) {
  const out = [];
  for (const g of groups) {
    const serverList: ServerView[] = [];
    for (const id of g.serverIds) {
      const s = await r.servers.get(id);
      serverList.push(
        s ? serverView(s) : ({ serverId: id, serverType: 'VIRTUAL_MACHINE' } as unknown as ServerView),
      );
    }
    out.push({
      serverGroupId: g.serverGroupId,
      ...(g.name !== undefined ? { name: g.name } : {}),
      serverList,
    });
  }
  return out;
}

async function groupsFrom(r: Repositories, groups: readonly ServerGroupInput[]): Promise<StoredGroup[]> {
  const ids = new Set<string>();
  const servers = new Set<string>();
  const out: StoredGroup[] = [];
  for (const [i, g] of groups.entries()) {
    const serverGroupId = g.serverGroupId ?? newId.serverGroup();
    if (ids.has(serverGroupId)) {
      throw new InvalidArgumentError(`serverGroups[${i}]: serverGroupId ${serverGroupId} is used twice`, {
        member: `serverGroups[${i}].serverGroupId`,
      });
    }
    ids.add(serverGroupId);
    const serverIds: string[] = [];
    for (const [k, s] of (g.serverList ?? []).entries()) {
      const member = `serverGroups[${i}].serverList[${k}].serverId`;
      if (!s.serverId) throw new InvalidArgumentError(`${member} is required`, { member });
      if (servers.has(s.serverId))
        throw new InvalidArgumentError(`${member}: server ${s.serverId} is listed twice`, { member });
      if (!(await r.servers.get(s.serverId))) {
        throw new InvalidArgumentError(`${member}: no server ${s.serverId} in the catalog`, { member });
      }
      servers.add(s.serverId);
      serverIds.push(s.serverId);
    }
    out.push({ serverGroupId, ...(g.name !== undefined ? { name: g.name } : {}), serverIds });
  }
  return out;
}

function tagsFrom(tags: readonly { key?: string; value?: string }[]): { key: string; value?: string }[] {
  const keys = new Set<string>();
  return tags.map((t, i) => {
    if (!t.key) throw new InvalidArgumentError(`tags[${i}].key is required`, { member: `tags[${i}].key` });
    if (keys.has(t.key))
      throw new InvalidArgumentError(`tags[${i}]: key ${t.key} is used twice`, { member: `tags[${i}].key` });
    keys.add(t.key);
    return { key: t.key, ...(t.value !== undefined ? { value: t.value } : {}) };
  });
}
