/**
 * An application's replication: its per-server configuration, and starting, stopping and
 * on-demand runs for all of its servers (one replication job per server, tagged with the
 * app's id, as SMS did).
 */
import { repositories, type Database } from '../db/index.js';
import type { FerryError } from '../errors/index.js';
import { OperationNotPermittedError, RunLimitExceededError } from '../errors/index.js';
import type { Clock } from './clock.js';
import { groupOf, once, serverFor, serverIn } from './app-shared.js';
import { requireApp, type AppBody } from './apps.js';
import type { CreateJobInput, JobService } from './jobs.js';
import { LIVE_JOB_STATES } from './states.js';

export interface ServerReplicationParameters {
  seedTime?: number;
  frequency?: number;
  runOnce?: boolean;
  licenseType?: string;
  numberOfRecentAmisToKeep?: number;
  encrypted?: boolean;
  kmsKeyId?: string;
}

interface StoredReplicationConfig {
  readonly groups: readonly {
    readonly serverGroupId: string;
    readonly servers: readonly {
      readonly serverId: string;
      readonly parameters: ServerReplicationParameters;
    }[];
  }[];
}

/** Frequency for servers the configuration does not cover (SMS's console default: 12). */
export const DEFAULT_APP_FREQUENCY = 12;

export class AppReplicationService {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #jobs: JobService;

  constructor(db: Database, clock: Clock, jobs: JobService) {
    this.#db = db;
    this.#clock = clock;
    this.#jobs = jobs;
  }

  async putAppReplicationConfiguration(input: {
    appId: string;
    serverGroupReplicationConfigurations?: {
      serverGroupId?: string;
      serverReplicationConfigurations?: {
        server?: { serverId?: string };
        serverReplicationParameters?: ServerReplicationParameters;
      }[];
    }[];
  }): Promise<Record<string, never>> {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    const body = app.body as AppBody;
    const seen = new Set<string>();
    const groups = (input.serverGroupReplicationConfigurations ?? []).map((g, i) => {
      const member = `serverGroupReplicationConfigurations[${i}]`;
      const group = groupOf(body, g.serverGroupId, member);
      return {
        serverGroupId: group.serverGroupId,
        servers: (g.serverReplicationConfigurations ?? []).map((s, k) => {
          const m = `${member}.serverReplicationConfigurations[${k}]`;
          const serverId = serverIn(group, s.server, m);
          once(seen, serverId, m);
          const parameters = { ...(s.serverReplicationParameters ?? {}) };
          this.#jobs.checkFrequency(parameters.frequency, `${m}.serverReplicationParameters.frequency`);
          return { serverId, parameters };
        }),
      };
    });
    const config: StoredReplicationConfig = { groups };
    await r.apps.update(app.appId, { replicationConfig: config, updatedAt: this.#clock.now() });
    return {};
  }

  async getAppReplicationConfiguration(input: { appId: string }) {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    const config = app.replicationConfig as StoredReplicationConfig | null;
    const out = [];
    for (const g of config?.groups ?? []) {
      const servers = [];
      for (const s of g.servers) {
        servers.push({ server: await serverFor(r, s.serverId), serverReplicationParameters: s.parameters });
      }
      out.push({ serverGroupId: g.serverGroupId, serverReplicationConfigurations: servers });
    }
    return { serverGroupReplicationConfigurations: out };
  }

  async deleteAppReplicationConfiguration(input: { appId: string }): Promise<Record<string, never>> {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    await r.apps.update(app.appId, { replicationConfig: null, updatedAt: this.#clock.now() });
    return {};
  }

  /** One job per server of the app (servers that already have this app's job are skipped). */
  async startAppReplication(input: { appId: string }): Promise<Record<string, never>> {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    const config = app.replicationConfig as StoredReplicationConfig | null;
    if (!config) {
      throw new OperationNotPermittedError(
        `application ${app.appId} has no replication configuration; call PutAppReplicationConfiguration first`,
      );
    }
    const body = app.body as AppBody;
    const params = new Map(
      config.groups.flatMap((g) => g.servers.map((s) => [s.serverId, s.parameters] as const)),
    );
    const serverIds = body.serverGroups.flatMap((g) => g.serverIds);
    if (serverIds.length === 0)
      throw new OperationNotPermittedError(`application ${app.appId} has no servers`);
    // Check every server before creating any job, so a refusal leaves nothing half-started.
    const todo: string[] = [];
    for (const id of serverIds) {
      const live = await r.jobs.forServer(id, LIVE_JOB_STATES);
      if (live.some((j) => j.appId === app.appId)) continue;
      if (live.length > 0) {
        throw new OperationNotPermittedError(
          `server ${id} is already replicated by job ${live[0]?.replicationJobId}, which is not this application's`,
        );
      }
      todo.push(id);
    }
    const now = this.#clock.now();
    for (const serverId of todo) {
      const p = params.get(serverId) ?? {};
      const job: CreateJobInput = {
        serverId,
        seedReplicationTime: p.seedTime ?? now,
        ...(p.runOnce ? { runOnce: true } : { frequency: p.frequency ?? DEFAULT_APP_FREQUENCY }),
        ...(p.licenseType !== undefined ? { licenseType: p.licenseType } : {}),
        ...(p.numberOfRecentAmisToKeep !== undefined
          ? { numberOfRecentAmisToKeep: p.numberOfRecentAmisToKeep }
          : {}),
        ...(p.encrypted !== undefined ? { encrypted: p.encrypted } : {}),
        ...(p.kmsKeyId !== undefined ? { kmsKeyId: p.kmsKeyId } : {}),
        ...(body.roleName !== undefined ? { roleName: body.roleName } : {}),
        description: `Application ${body.name} (${app.appId})`,
      };
      await this.#jobs.createReplicationJob(job, app.appId);
    }
    return {};
  }

  async startOnDemandAppReplication(input: {
    appId: string;
    description?: string;
  }): Promise<Record<string, never>> {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    const jobs = await this.#jobs.jobsOfApp(app.appId);
    if (jobs.length === 0) {
      throw new OperationNotPermittedError(
        `application ${app.appId} is not replicating; call StartAppReplication first`,
      );
    }
    let started = 0;
    let limited: FerryError | undefined;
    for (const j of jobs) {
      try {
        await this.#jobs.startOnDemandReplicationRun({
          replicationJobId: j.replicationJobId,
          ...(input.description !== undefined ? { description: input.description } : {}),
        });
        started++;
      } catch (err) {
        // A server whose run is still going, or that used its quota, is skipped.
        if (err instanceof RunLimitExceededError) limited = err;
        else if (!(err instanceof OperationNotPermittedError)) throw err;
      }
    }
    if (started === 0) {
      throw (
        limited ??
        new OperationNotPermittedError(`every server of ${app.appId} already has a run in progress`)
      );
    }
    return {};
  }

  /** Stops replication by deleting the app's jobs (SMS semantics); images already made stay. */
  async stopAppReplication(input: { appId: string }): Promise<Record<string, never>> {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    for (const j of await this.#jobs.jobsOfApp(app.appId)) {
      await this.#jobs.deleteReplicationJob({ replicationJobId: j.replicationJobId });
    }
    return {};
  }
}
