/**
 * An application's launch configuration, LaunchApp / TerminateApp (delegated to the launch
 * host, launches.ts), and CloudFormation-style templates rendered from it.
 * Templates are kept in the database; the S3 location returned names that record
 * (bucket `ferry-local`, key `templates/<appId>/<templateId>.<json|yaml>`).
 */
import { repositories, type Database } from '../db/index.js';
import { OperationNotPermittedError } from '../errors/index.js';
import type { Clock } from './clock.js';
import { groupOf, once, serverFor, serverIn } from './app-shared.js';
import { requireApp, type AppBody } from './apps.js';
import { newId } from './ids.js';
import type { LaunchService } from './launches.js';
import { toYaml } from './yaml.js';

type S3Location = { bucket?: string; key?: string };
export interface ServerLaunchConfigurationInput {
  server?: { serverId?: string };
  logicalId?: string;
  vpc?: string;
  subnet?: string;
  securityGroup?: string;
  ec2KeyName?: string;
  userData?: { s3Location?: S3Location };
  instanceType?: string;
  associatePublicIpAddress?: boolean;
  iamInstanceProfileName?: string;
  configureScript?: S3Location;
  configureScriptType?: string;
}

interface StoredLaunchConfig {
  readonly roleName?: string;
  readonly autoLaunch?: boolean;
  readonly groups: readonly {
    readonly serverGroupId: string;
    readonly launchOrder?: number;
    readonly servers: readonly (Omit<ServerLaunchConfigurationInput, 'server'> & { serverId: string })[];
  }[];
}

export const TEMPLATE_BUCKET = 'ferry-local';

export class AppLaunchService {
  readonly #db: Database;
  readonly #clock: Clock;

  readonly #launcher: LaunchService | undefined;

  constructor(db: Database, clock: Clock, launcher?: LaunchService) {
    this.#db = db;
    this.#clock = clock;
    this.#launcher = launcher;
  }

  async putAppLaunchConfiguration(input: {
    appId: string;
    roleName?: string;
    autoLaunch?: boolean;
    serverGroupLaunchConfigurations?: {
      serverGroupId?: string;
      launchOrder?: number;
      serverLaunchConfigurations?: ServerLaunchConfigurationInput[];
    }[];
  }): Promise<Record<string, never>> {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    const body = app.body as AppBody;
    const seen = new Set<string>();
    const config: StoredLaunchConfig = {
      ...(input.roleName !== undefined ? { roleName: input.roleName } : {}),
      ...(input.autoLaunch !== undefined ? { autoLaunch: input.autoLaunch } : {}),
      groups: (input.serverGroupLaunchConfigurations ?? []).map((g, i) => {
        const member = `serverGroupLaunchConfigurations[${i}]`;
        const group = groupOf(body, g.serverGroupId, member);
        return {
          serverGroupId: group.serverGroupId,
          ...(g.launchOrder !== undefined ? { launchOrder: g.launchOrder } : {}),
          servers: (g.serverLaunchConfigurations ?? []).map((s, k) => {
            const m = `${member}.serverLaunchConfigurations[${k}]`;
            const serverId = serverIn(group, s.server, m);
            once(seen, serverId, m);
            const { server: _server, ...rest } = s;
            return { ...rest, serverId };
          }),
        };
      }),
    };
    await r.apps.update(app.appId, { launchConfig: config, updatedAt: this.#clock.now() });
    return {};
  }

  async getAppLaunchConfiguration(input: { appId: string }) {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    const config = app.launchConfig as StoredLaunchConfig | null;
    const groups = [];
    for (const g of config?.groups ?? []) {
      const servers = [];
      for (const { serverId, ...rest } of g.servers)
        servers.push({ server: await serverFor(r, serverId), ...rest });
      groups.push({
        serverGroupId: g.serverGroupId,
        launchOrder: g.launchOrder,
        serverLaunchConfigurations: servers,
      });
    }
    return {
      appId: app.appId,
      ...(config?.roleName !== undefined ? { roleName: config.roleName } : {}),
      ...(config?.autoLaunch !== undefined ? { autoLaunch: config.autoLaunch } : {}),
      serverGroupLaunchConfigurations: groups,
    };
  }

  async deleteAppLaunchConfiguration(input: { appId: string }): Promise<Record<string, never>> {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    await r.apps.update(app.appId, { launchConfig: null, updatedAt: this.#clock.now() });
    return {};
  }

  async launchApp(input: { appId: string }): Promise<Record<string, never>> {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    if (!app.launchConfig) {
      throw new OperationNotPermittedError(
        `application ${app.appId} has no launch configuration; call PutAppLaunchConfiguration first`,
      );
    }
    if (!this.#launcher) {
      throw new OperationNotPermittedError(
        'this server is not a launch host (it has no image store or instance directory)',
      );
    }
    return this.#launcher.launchApp(app.appId);
  }

  async terminateApp(input: { appId: string }): Promise<Record<string, never>> {
    const r = repositories(this.#db);
    const app = await requireApp(r, input.appId);
    if (!this.#launcher) throw new OperationNotPermittedError(`application ${app.appId} is not launched`);
    return this.#launcher.terminateApp(app.appId);
  }

  async generateTemplate(input: { appId: string; templateFormat?: string }) {
    return this.#render(input.appId, 'template', input.templateFormat ?? 'JSON');
  }

  /** A change set against the launched stack; with nothing launched, every resource is an addition. */
  async generateChangeSet(input: { appId: string; changesetFormat?: string }) {
    return this.#render(input.appId, 'change-set', input.changesetFormat ?? 'JSON');
  }

  /** The stored text of a template (for `ferry` and Ferry-specific endpoints). */
  async template(templateId: string): Promise<string | undefined> {
    return (await repositories(this.#db).templates.get(templateId))?.body;
  }

  async #render(appId: string, kind: 'template' | 'change-set', format: string) {
    const r = repositories(this.#db);
    const app = await requireApp(r, appId);
    const body = app.body as AppBody;
    const config = app.launchConfig as StoredLaunchConfig | null;
    const byServer = new Map(
      config?.groups.flatMap((g) => g.servers.map((s) => [s.serverId, { g, s }] as const)) ?? [],
    );
    const resources: Record<string, unknown> = {};
    const order = [...body.serverGroups].sort(
      (a, b) => (orderOf(config, a.serverGroupId) ?? 1e9) - (orderOf(config, b.serverGroupId) ?? 1e9),
    );
    let previous: string[] = [];
    for (const group of order) {
      const current: string[] = [];
      for (const serverId of group.serverIds) {
        const c = byServer.get(serverId)?.s;
        const job = (
          await r.jobs.forServer(serverId, ['ACTIVE', 'COMPLETED', 'FAILING', 'PAUSED_ON_FAILURE', 'FAILED'])
        )[0];
        const logicalId = c?.logicalId ?? `Server${serverId.replace(/[^A-Za-z0-9]/g, '')}`;
        current.push(logicalId);
        resources[logicalId] = {
          Type: 'AWS::EC2::Instance',
          ...(previous.length ? { DependsOn: previous } : {}),
          Properties: {
            ImageId: job?.latestAmiId ?? `(no image yet for ${serverId})`,
            ...(c?.instanceType ? { InstanceType: c.instanceType } : {}),
            ...(c?.subnet ? { SubnetId: c.subnet } : {}),
            ...(c?.securityGroup ? { SecurityGroupIds: [c.securityGroup] } : {}),
            ...(c?.ec2KeyName ? { KeyName: c.ec2KeyName } : {}),
            ...(c?.iamInstanceProfileName ? { IamInstanceProfile: c.iamInstanceProfileName } : {}),
            Tags: [{ Key: 'ferry:serverId', Value: serverId }],
          },
        };
      }
      previous = current;
    }
    const doc =
      kind === 'template'
        ? {
            AWSTemplateFormatVersion: '2010-09-09',
            Description: `Ferry application ${body.name} (${app.appId})`,
            Resources: resources,
          }
        : {
            Changes: Object.keys(resources).map((id) => ({
              Type: 'Resource',
              ResourceChange: { Action: 'Add', LogicalResourceId: id },
            })),
          };
    const text = format === 'YAML' ? toYaml(doc) : JSON.stringify(doc, null, 2) + '\n';
    const templateId = newId.template();
    await r.templates.insert({
      templateId,
      appId: app.appId,
      kind,
      format,
      body: text,
      createdAt: this.#clock.now(),
    });
    const ext = format === 'YAML' ? 'yaml' : 'json';
    return {
      s3Location: {
        bucket: TEMPLATE_BUCKET,
        key: `${kind === 'template' ? 'templates' : 'change-sets'}/${app.appId}/${templateId}.${ext}`,
      },
    };
  }
}

function orderOf(config: StoredLaunchConfig | null, groupId: string): number | undefined {
  return config?.groups.find((g) => g.serverGroupId === groupId)?.launchOrder;
}
