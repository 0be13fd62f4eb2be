/**
 * An application's launch configuration, LaunchApp / TerminateApp (delegated to the launch
 * host, launches.ts), and CloudFormation-style templates rendered from it.
 * Templates are kept in the database; the S3 location returned names that record
 * (bucket `ferry-local`, key `templates/<appId>/<templateId>.<json|yaml>`).
 */
import { repositories, type Database } from '../db/index.js';
import { NotFoundError, OperationNotPermittedError } from '../errors/index.js';
import type { Clock } from './clock.js';
import { groupOf, once, serverFor, serverIn } from './app-shared.js';
import { requireApp, type AppBody } from './apps.js';
import { newId } from './ids.js';
import { DEFAULT_INSTANCE_TYPE, type LaunchService } from './launches.js';
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

  /** A stored template by the location GenerateTemplate / GenerateChangeSet returned. */
  async templateAt(input: { bucket?: string; key: string }) {
    const m = /^(templates|change-sets)\/([^/]+)\/([^/.]+)\.(json|yaml)$/.exec(input.key);
    const rec =
      m && (input.bucket ?? TEMPLATE_BUCKET) === TEMPLATE_BUCKET
        ? await repositories(this.#db).templates.get(m[3]!)
        : undefined;
    if (!m || !rec || rec.appId !== m[2]) {
      throw new NotFoundError(
        `no template at ${input.bucket ?? TEMPLATE_BUCKET}/${input.key.slice(0, 256)}`,
        {
          resource: 'template',
        },
      );
    }
    return { key: input.key, format: rec.format, appId: rec.appId, body: rec.body };
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
    // Image ids, instance types, subnets and security groups are parameters (defaults: the
    // app's latest images and its launch configuration), so one template serves each wave.
    const parameters: Record<string, unknown> = {};
    const param = (name: string, type: string, description: string, value: string | undefined) => {
      parameters[name] = {
        Type: type,
        Description: description,
        ...(value !== undefined ? { Default: value } : {}),
      };
      return { Ref: name };
    };
    const order = [...body.serverGroups].sort(
      (a, b) => (orderOf(config, a.serverGroupId) ?? 1e9) - (orderOf(config, b.serverGroupId) ?? 1e9),
    );
    let previous: string[] = [];
    for (const group of order) {
      const current: string[] = [];
      for (const serverId of group.serverIds) {
        const c = byServer.get(serverId)?.s;
        // The live job's latest image; after a finalized cutover (jobs deleted), the last one made.
        const jobs = await r.jobs.forServer(serverId, [
          'PENDING',
          'ACTIVE',
          'COMPLETED',
          'FAILING',
          'PAUSED_ON_FAILURE',
          'FAILED',
          'DELETING',
          'DELETED',
        ]);
        const job =
          jobs.find((j) => j.latestAmiId && j.state !== 'DELETING' && j.state !== 'DELETED') ??
          jobs.findLast((j) => j.latestAmiId);
        const logicalId = c?.logicalId ?? `Server${serverId.replace(/[^A-Za-z0-9]/g, '')}`;
        current.push(logicalId);
        resources[logicalId] = {
          Type: 'AWS::EC2::Instance',
          ...(previous.length ? { DependsOn: previous } : {}),
          Properties: {
            ImageId: param(
              `${logicalId}ImageId`,
              'String',
              `Image of server ${serverId}`,
              job?.latestAmiId ?? undefined,
            ),
            InstanceType: param(
              `${logicalId}InstanceType`,
              'String',
              `Instance type of ${logicalId}`,
              c?.instanceType ?? DEFAULT_INSTANCE_TYPE,
            ),
            ...(c?.subnet
              ? { SubnetId: param(`${logicalId}SubnetId`, 'String', `Subnet of ${logicalId}`, c.subnet) }
              : {}),
            ...(c?.securityGroup
              ? {
                  SecurityGroupIds: [
                    param(
                      `${logicalId}SecurityGroupId`,
                      'String',
                      `Security group of ${logicalId}`,
                      c.securityGroup,
                    ),
                  ],
                }
              : {}),
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
            Parameters: parameters,
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
