/**
 * An application's validation configuration (app-level SSM commands, server-level
 * user-data scripts) and the outputs validation scripts report with
 * NotifyAppValidationOutput. Validation ids are assigned when omitted (`val-` + 17 hex,
 * the model's pattern).
 */
import { repositories, type Database } from '../db/index.js';
import { InvalidArgumentError, ParameterMissingError } from '../errors/index.js';
import type { Clock } from './clock.js';
import { groupOf, serverFor, serverIn } from './app-shared.js';
import { requireApp, type AppBody } from './apps.js';
import { newId } from './ids.js';
import type { ChecksBody } from './validation/checks.js';

type S3 = { bucket?: string; key?: string };
export interface AppValidationInput {
  validationId?: string;
  name?: string;
  appValidationStrategy?: string;
  ssmValidationParameters?: {
    source?: { s3Location?: S3 };
    instanceId?: string;
    scriptType?: string;
    command?: string;
    executionTimeoutSeconds?: number;
    outputS3BucketName?: string;
  };
}
export interface ServerValidationInput {
  server?: { serverId?: string };
  validationId?: string;
  name?: string;
  serverValidationStrategy?: string;
  userDataValidationParameters?: { source?: { s3Location?: S3 }; scriptType?: string };
}

interface StoredValidationConfig {
  readonly app: readonly (AppValidationInput & { validationId: string })[];
  readonly groups: readonly {
    readonly serverGroupId: string;
    readonly servers: readonly (Omit<ServerValidationInput, 'server'> & {
      validationId: string;
      serverId: string;
    })[];
  }[];
}

interface StoredOutput {
  readonly validationId: string;
  readonly status: string;
  readonly statusMessage?: string;
  readonly latestValidationTime: number;
}

export class AppValidationService {
  readonly #db: Database;
  readonly #clock: Clock;

  constructor(db: Database, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  async putAppValidationConfiguration(input: {
    appId: string;
    appValidationConfigurations?: AppValidationInput[];
    serverGroupValidationConfigurations?: {
      serverGroupId?: string;
      serverValidationConfigurations?: ServerValidationInput[];
    }[];
  }): Promise<Record<string, never>> {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    const body = app.body as AppBody;
    const ids = new Set<string>();
    const assign = (id: string | undefined, member: string) => {
      const v = id ?? newId.validation();
      if (ids.has(v))
        throw new InvalidArgumentError(`${member}: validationId ${v} is used twice`, { member });
      ids.add(v);
      return v;
    };
    const config: StoredValidationConfig = {
      app: (input.appValidationConfigurations ?? []).map((a, i) => ({
        ...a,
        validationId: assign(a.validationId, `appValidationConfigurations[${i}]`),
      })),
      groups: (input.serverGroupValidationConfigurations ?? []).map((g, i) => {
        const member = `serverGroupValidationConfigurations[${i}]`;
        const group = groupOf(body, g.serverGroupId, member);
        return {
          serverGroupId: group.serverGroupId,
          servers: (g.serverValidationConfigurations ?? []).map((s, k) => {
            const m = `${member}.serverValidationConfigurations[${k}]`;
            const { server, ...rest } = s;
            return { ...rest, serverId: serverIn(group, server, m), validationId: assign(s.validationId, m) };
          }),
        };
      }),
    };
    // Outputs of validations that no longer exist are dropped with them.
    for (const c of Object.values((app.body as ChecksBody).checks ?? {})) ids.add(c.validationId);
    const outputs = ((app.validationOutputs ?? []) as StoredOutput[]).filter((o) => ids.has(o.validationId));
    await r.apps.update(app.appId, {
      validationConfig: config,
      validationOutputs: outputs,
      updatedAt: this.#clock.now(),
    });
    return {};
  }

  async getAppValidationConfiguration(input: { appId: string }) {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    const config = app.validationConfig as StoredValidationConfig | null;
    const groups = [];
    for (const g of config?.groups ?? []) {
      const servers = [];
      for (const { serverId, ...rest } of g.servers)
        servers.push({ server: await serverFor(r, serverId), ...rest });
      groups.push({ serverGroupId: g.serverGroupId, serverValidationConfigurations: servers });
    }
    return { appValidationConfigurations: config?.app ?? [], serverGroupValidationConfigurations: groups };
  }

  async deleteAppValidationConfiguration(input: { appId: string }): Promise<Record<string, never>> {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    await r.apps.update(app.appId, {
      validationConfig: null,
      validationOutputs: [],
      updatedAt: this.#clock.now(),
    });
    return {};
  }

  async getAppValidationOutput(input: { appId: string }) {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    const config = app.validationConfig as StoredValidationConfig | null;
    const outputs = new Map(
      ((app.validationOutputs ?? []) as StoredOutput[]).map((o) => [o.validationId, o]),
    );
    const result = (id: string) => {
      const o = outputs.get(id);
      return o
        ? {
            status: o.status,
            ...(o.statusMessage !== undefined ? { statusMessage: o.statusMessage } : {}),
            latestValidationTime: o.latestValidationTime,
          }
        : { status: 'READY_FOR_VALIDATION' };
    };
    const list = [];
    for (const a of config?.app ?? []) {
      const bucket = a.ssmValidationParameters?.outputS3BucketName;
      list.push({
        validationId: a.validationId,
        ...(a.name !== undefined ? { name: a.name } : {}),
        ...result(a.validationId),
        ...(bucket ? { appValidationOutput: { ssmOutput: { s3Location: { bucket } } } } : {}),
      });
    }
    for (const g of config?.groups ?? []) {
      for (const s of g.servers) {
        list.push({
          validationId: s.validationId,
          ...(s.name !== undefined ? { name: s.name } : {}),
          ...result(s.validationId),
          serverValidationOutput: { server: await serverFor(r, s.serverId) },
        });
      }
    }
    // Ferry's launch checks (validation/checks.ts) report like server validations.
    for (const [serverId, set] of Object.entries((app.body as ChecksBody).checks ?? {})) {
      list.push({
        validationId: set.validationId,
        name: set.name ?? `Ferry checks (${set.checks.map((c) => c.kind).join(', ')})`,
        ...result(set.validationId),
        serverValidationOutput: { server: await serverFor(r, serverId) },
      });
    }
    return { validationOutputList: list };
  }

  async notifyAppValidationOutput(input: {
    appId: string;
    notificationContext?: { validationId?: string; status?: string; statusMessage?: string };
  }): Promise<Record<string, never>> {
    const n = input.notificationContext;
    if (!n)
      throw new ParameterMissingError('notificationContext is required', { member: 'notificationContext' });
    if (!n.validationId)
      throw new ParameterMissingError('notificationContext.validationId is required', {
        member: 'notificationContext.validationId',
      });
    if (!n.status)
      throw new ParameterMissingError('notificationContext.status is required', {
        member: 'notificationContext.status',
      });
    await this.#db.transaction(async (tx) => {
      const r = repositories(tx);
      const app = await requireApp(r, input.appId);
      const config = app.validationConfig as StoredValidationConfig | null;
      const known =
        [...(config?.app ?? []), ...(config?.groups ?? []).flatMap((g) => g.servers)].some(
          (v) => v.validationId === n.validationId,
        ) ||
        Object.values((app.body as ChecksBody).checks ?? {}).some((c) => c.validationId === n.validationId);
      if (!known) {
        throw new InvalidArgumentError(`application ${app.appId} has no validation ${n.validationId}`, {
          member: 'notificationContext.validationId',
        });
      }
      const outputs = ((app.validationOutputs ?? []) as StoredOutput[]).filter(
        (o) => o.validationId !== n.validationId,
      );
      outputs.push({
        validationId: n.validationId as string,
        status: n.status as string,
        ...(n.statusMessage !== undefined ? { statusMessage: n.statusMessage } : {}),
        latestValidationTime: this.#clock.now(),
      });
      await r.apps.update(app.appId, { validationOutputs: outputs });
    });
    return {};
  }
}
