/**
 * Ferry's launch plan: an application's server groups, launch order and per-server launch
 * settings as one JSON file, made from a running app (`ferry apps plan APP_ID`) and replayed
 * on any Ferry server (`ferry apps launch --plan FILE`): the app is created (or updated, by
 * name), its launch configuration put, then it is launched — as a plain LaunchApp, a test
 * launch or a cutover. Servers are found by id, else by their VM name and id in the target's
 * catalog, so a plan made on one Ferry server replays on another that catalogued the same VMs.
 *
 *   { "ferryLaunchPlan": 1, "name": "shop", "description": "…",
 *     "groups": [ { "name": "database", "launchOrder": 1,
 *                   "servers": [ { "serverId": "s-…", "vmName": "db", "vmId": "…",
 *                                  "logicalId": "Db", "instanceType": "t3.micro" } ] } ] }
 */
import type { SMS } from '@aws-sdk/client-sms';
import { InvalidArgumentError, NotFoundError } from '../../errors/index.js';
import { allPages, PAGE_SIZE } from '../remote/pages.js';
import type { Remote } from '../remote/session.js';

export const PLAN_VERSION = 1;
/** A plan is a few KiB; anything far larger is the wrong file. */
export const MAX_PLAN_BYTES = 1024 * 1024;
const MAX_GROUPS = 100;
const MAX_SERVERS = 1000;

/** Launch settings of one server that the plan carries (SMS ServerLaunchConfiguration members). */
const SERVER_SETTINGS = [
  'logicalId',
  'instanceType',
  'vpc',
  'subnet',
  'securityGroup',
  'ec2KeyName',
  'associatePublicIpAddress',
  'iamInstanceProfileName',
  'configureScriptType',
] as const;

export interface PlanServer {
  serverId?: string;
  vmName?: string;
  vmId?: string;
  logicalId?: string;
  instanceType?: string;
  [setting: string]: unknown;
}
export interface PlanGroup {
  name: string;
  launchOrder?: number;
  servers: PlanServer[];
}
export interface LaunchPlan {
  ferryLaunchPlan: number;
  name: string;
  description?: string;
  groups: PlanGroup[];
}

type Call = <T>(f: (sms: SMS, o: { abortSignal: AbortSignal }) => Promise<T>) => Promise<T>;

/** The plan of an existing app. */
export async function planOf(remote: Remote, appId: string): Promise<LaunchPlan> {
  const call: Call = (f) => remote.call(f);
  const app = await call((s, o) => s.getApp({ appId }, o));
  const config = await call((s, o) => s.getAppLaunchConfiguration({ appId }, o));
  const byGroup = new Map((config.serverGroupLaunchConfigurations ?? []).map((g) => [g.serverGroupId, g]));
  return {
    ferryLaunchPlan: PLAN_VERSION,
    name: app.appSummary?.name ?? appId,
    ...(app.appSummary?.description ? { description: app.appSummary.description } : {}),
    groups: (app.serverGroups ?? []).map((g, i) => {
      const lc = byGroup.get(g.serverGroupId);
      const settings = new Map((lc?.serverLaunchConfigurations ?? []).map((s) => [s.server?.serverId, s]));
      return {
        name: g.name ?? `group-${i + 1}`,
        ...(lc?.launchOrder !== undefined ? { launchOrder: lc.launchOrder } : {}),
        servers: (g.serverList ?? []).map((srv) => {
          const s = settings.get(srv.serverId) as Record<string, unknown> | undefined;
          const out: PlanServer = {
            ...(srv.serverId ? { serverId: srv.serverId } : {}),
            ...(srv.vmServer?.vmName ? { vmName: srv.vmServer.vmName } : {}),
            ...(srv.vmServer?.vmServerAddress?.vmId ? { vmId: srv.vmServer.vmServerAddress.vmId } : {}),
          };
          const extra: Record<string, unknown> = out;
          for (const k of SERVER_SETTINGS) if (s?.[k] !== undefined && s[k] !== null) extra[k] = s[k];
          return out;
        }),
      };
    }),
  };
}

/** Parses and checks a plan file's text; every failure names the member at fault. */
export function parsePlan(text: string, path: string): LaunchPlan {
  if (Buffer.byteLength(text) > MAX_PLAN_BYTES) {
    throw new InvalidArgumentError(`${path}: a launch plan is at most ${MAX_PLAN_BYTES} bytes`, { path });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`${path} is not JSON: ${(err as Error).message}`, { path });
  }
  const bad = (member: string, why: string) =>
    new InvalidArgumentError(`${path}: ${member} ${why}`, { path, member });
  const p = raw as Partial<LaunchPlan>;
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw bad('(root)', 'must be an object');
  if (p.ferryLaunchPlan !== PLAN_VERSION) throw bad('ferryLaunchPlan', `must be ${PLAN_VERSION}`);
  if (typeof p.name !== 'string' || p.name.length === 0 || p.name.length > 255)
    throw bad('name', 'must be 1-255 characters');
  if (p.description !== undefined && typeof p.description !== 'string')
    throw bad('description', 'must be text');
  if (!Array.isArray(p.groups) || p.groups.length === 0 || p.groups.length > MAX_GROUPS)
    throw bad('groups', `must list 1-${MAX_GROUPS} groups`);
  let servers = 0;
  p.groups.forEach((g, i) => {
    const m = `groups[${i}]`;
    if (typeof g !== 'object' || g === null) throw bad(m, 'must be an object');
    if (typeof g.name !== 'string' || g.name.length === 0 || g.name.length > 255)
      throw bad(`${m}.name`, 'must be 1-255 characters');
    if (
      g.launchOrder !== undefined &&
      (!Number.isInteger(g.launchOrder) || g.launchOrder < 0 || g.launchOrder > 10_000)
    )
      throw bad(`${m}.launchOrder`, 'must be an integer 0-10000');
    if (!Array.isArray(g.servers)) throw bad(`${m}.servers`, 'must be a list');
    g.servers.forEach((s, k) => {
      const sm = `${m}.servers[${k}]`;
      if (typeof s !== 'object' || s === null) throw bad(sm, 'must be an object');
      if (typeof s.serverId !== 'string' && typeof s.vmName !== 'string')
        throw bad(sm, 'needs a serverId or a vmName');
      for (const key of Object.keys(s)) {
        if (!['serverId', 'vmName', 'vmId', ...SERVER_SETTINGS].includes(key))
          throw bad(`${sm}.${key}`, 'is not a plan member');
      }
    });
    servers += g.servers.length;
  });
  if (servers > MAX_SERVERS) throw bad('groups', `hold more than ${MAX_SERVERS} servers`);
  return p as LaunchPlan;
}

export type PlanMode = 'launch' | 'test' | 'cutover';

/** Creates or updates the plan's app on this server, puts its launch configuration, launches it. */
export async function replayPlan(
  remote: Remote,
  plan: LaunchPlan,
  mode: PlanMode,
): Promise<{ appId: string }> {
  const call: Call = (f) => remote.call(f);
  const catalog = await allPages(async (nextToken) => {
    const out = await call((s, o) => s.getServers({ maxResults: PAGE_SIZE, nextToken }, o));
    return { items: out.serverList, nextToken: out.nextToken };
  });
  const resolve = (s: PlanServer): string => {
    if (s.serverId && catalog.some((c) => c.serverId === s.serverId)) return s.serverId;
    const matches = catalog.filter(
      (c) =>
        (s.vmName === undefined || c.vmServer?.vmName === s.vmName) &&
        (s.vmId === undefined || c.vmServer?.vmServerAddress?.vmId === s.vmId) &&
        (s.vmName !== undefined || s.vmId !== undefined),
    );
    if (matches.length !== 1 || !matches[0]?.serverId) {
      throw new NotFoundError(
        `plan server ${s.serverId ?? ''}${s.vmName ? ` (VM ${s.vmName})` : ''} is ${matches.length ? 'ambiguous' : 'not'} in this server's catalog`,
        { resource: 'server' },
      );
    }
    return matches[0].serverId;
  };
  const groups = plan.groups.map((g) => ({ ...g, ids: g.servers.map(resolve) }));
  const serverGroups = groups.map((g) => ({
    name: g.name,
    serverList: g.ids.map((serverId) => ({ serverId })),
  }));

  const existing = (
    await allPages(async (nextToken) => {
      const out = await call((s, o) => s.listApps({ maxResults: PAGE_SIZE, nextToken }, o));
      return { items: out.apps, nextToken: out.nextToken };
    })
  ).filter((a) => a.name === plan.name);
  if (existing.length > 1) {
    throw new InvalidArgumentError(
      `${existing.length} applications are named ${JSON.stringify(plan.name)}; rename one`,
    );
  }
  const out = existing[0]?.appId
    ? await call((s, o) =>
        s.updateApp(
          { appId: existing[0]!.appId!, name: plan.name, description: plan.description, serverGroups },
          o,
        ),
      )
    : await call((s, o) => s.createApp({ name: plan.name, description: plan.description, serverGroups }, o));
  const appId = (out.appSummary?.appId ?? existing[0]?.appId)!;
  const groupIds = new Map((out.serverGroups ?? []).map((g) => [g.name, g.serverGroupId]));
  await call((s, o) =>
    s.putAppLaunchConfiguration(
      {
        appId,
        serverGroupLaunchConfigurations: groups.map((g) => ({
          serverGroupId: groupIds.get(g.name),
          ...(g.launchOrder !== undefined ? { launchOrder: g.launchOrder } : {}),
          serverLaunchConfigurations: g.servers.map((srv, i) => {
            const settings: Record<string, unknown> = {};
            for (const k of SERVER_SETTINGS) if (srv[k] !== undefined) settings[k] = srv[k];
            return { server: { serverId: g.ids[i] }, ...settings };
          }),
        })),
      },
      o,
    ),
  );
  if (mode === 'launch') await call((s, o) => s.launchApp({ appId }, o));
  else await remote.ferry(mode === 'test' ? 'StartTest' : 'StartCutover', { appId });
  return { appId };
}
