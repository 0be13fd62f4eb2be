/**
 * The migration lifecycle of applications, over a running server's Ferry API
 * (docs/launch.md, "Lifecycle"):
 *
 *   ferry apps lifecycle APP_ID                       state, servers, instances, history
 *   ferry apps template APP_ID [--yaml] [--change-set] GenerateTemplate, then prints it
 *   ferry apps plan APP_ID                            the app as a launch plan (app-plan.ts)
 *   ferry apps options APP_ID [SERVER_ID [--bus B] [--nic M] [--firmware F] [--network N]
 *              [--preserve-mac] [--mac MAC] [--image ami-…] [--host local|auto|h-…]]   per-server boot settings (show / set)
 *   ferry apps launch --plan FILE [--test | --cutover] [--wait]   replays a plan here
 *   ferry apps test|ready|revert|cutover|revert-cutover|finalize|archive|unarchive
 *              (APP_ID | --wave NAME) [--wait] [--no-final-replication]
 *   ferry waves [list]                                waves and their apps' states
 *   ferry waves assign NAME APP_ID...                 (NAME '' takes the apps out of their wave)
 *
 * --wait follows a test launch or cutover to its end, printing each new status message;
 * it exits 0 when the app reached the state the action aims at, FERRY_LIFECYCLE_FAILED otherwise.
 */
import { open } from 'node:fs/promises';
import { InvalidArgumentError, LifecycleFailedError, toFerryError } from '../../errors/index.js';
import { needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { CLIENT_OPTIONS, CLIENT_USAGE } from '../remote/connection.js';
import { withRemote, type Remote } from '../remote/session.js';
import { cell, renderTable, tableTime } from '../table.js';
import { MAX_PLAN_BYTES, parsePlan, planOf, replayPlan } from './app-plan.js';
import { appChecksCommand } from './app-checks.js';

const ACTIONS = {
  test: ['StartTest', 'TEST_IN_PROGRESS'],
  ready: ['MarkReadyForCutover', 'READY_FOR_CUTOVER'],
  revert: ['RevertToReadyForTesting', 'READY_FOR_TESTING'],
  cutover: ['StartCutover', 'CUTOVER_COMPLETE'],
  'revert-cutover': ['RevertCutover', 'READY_FOR_CUTOVER'],
  finalize: ['FinalizeCutover', 'FINALIZED'],
  archive: ['ArchiveApp', 'ARCHIVED'],
  unarchive: ['UnarchiveApp', ''],
} as const;

const USAGE =
  `ferry apps lifecycle|template|plan APP_ID | ferry apps options APP_ID [SERVER_ID --bus|--nic|--firmware|--network|--preserve-mac|--mac|--image|--host] | ferry apps launch --plan FILE [--test|--cutover] | ferry apps ${Object.keys(ACTIONS).join('|')} (APP_ID | --wave NAME) ` +
  `[--wait] [--no-final-replication] ${CLIENT_USAGE}`;
const WAVES_USAGE = `ferry waves [list | assign NAME APP_ID...] ${CLIENT_USAGE}`;

const OPTIONS = {
  ...CLIENT_OPTIONS,
  wave: { type: 'string' },
  wait: { type: 'boolean' },
  'no-final-replication': { type: 'boolean' },
  yaml: { type: 'boolean' },
  plan: { type: 'string' },
  bus: { type: 'string' },
  nic: { type: 'string' },
  firmware: { type: 'string' },
  network: { type: 'string' },
  'preserve-mac': { type: 'boolean' },
  image: { type: 'string' },
  host: { type: 'string' },
  mac: { type: 'string' },
  test: { type: 'boolean' },
  cutover: { type: 'boolean' },
  'change-set': { type: 'boolean' },
} as const;

/** How often --wait reads the app's state. */
const WAIT_POLL_MS = 1000;

interface Lifecycle {
  appId: string;
  state: string;
  statusMessage: string;
  actionInProgress?: boolean;
  waveName?: string;
  launchPurpose?: string;
  servers?: { serverId: string; latestImageId?: string; instanceId?: string; instanceState?: string }[];
  cutover?: { finalReplicationMs?: number; launchMs?: number; totalMs?: number };
  streaming?: { percentDone: number; done: boolean; error?: string };
  history?: { state: string; message: string; time: number }[];
}

export async function appsCommand(argv: string[]): Promise<number> {
  if (argv[0] === 'checks') return appChecksCommand(argv.slice(1));
  const { values, positionals } = parse(argv, OPTIONS, USAGE);
  const [verb, ...rest] = positionals;
  if (verb === 'lifecycle') {
    const [appId] = needPositionals(rest, 1, USAGE) as [string];
    return withRemote(values, async (remote) => {
      const l = await remote.ferry<Lifecycle>('GetAppLifecycle', { appId });
      if (values.json) writeJson(l);
      else process.stdout.write(render(l));
      return 0;
    });
  }
  if (verb === 'plan') {
    const [appId] = needPositionals(rest, 1, USAGE) as [string];
    return withRemote(values, async (remote) => {
      writeJson(await planOf(remote, appId));
      return 0;
    });
  }
  if (verb === 'launch') {
    needPositionals(rest, 0, USAGE);
    if (!values.plan) throw new InvalidArgumentError(`give --plan FILE\nusage: ${USAGE}`);
    if (values.test && values.cutover) throw new InvalidArgumentError('--test or --cutover, not both');
    const plan = parsePlan(await readPlan(values.plan), values.plan);
    const mode = values.test ? 'test' : values.cutover ? 'cutover' : 'launch';
    return withRemote(values, async (remote) => {
      const { appId } = await replayPlan(remote, plan, mode);
      if (!values.wait) {
        if (values.json) writeJson({ appId, mode });
        else process.stdout.write(`${appId}  ${mode} started\n`);
        return 0;
      }
      if (mode === 'launch') {
        const status = await followLaunch(remote, appId, !values.json);
        if (values.json) writeJson({ appId, launchStatus: status });
        if (status !== 'LAUNCHED') throw new LifecycleFailedError(`${appId} is ${status}`);
        return 0;
      }
      const l = await follow(remote, appId, !values.json);
      if (values.json) writeJson(l);
      const aim = mode === 'test' ? 'TEST_IN_PROGRESS' : 'CUTOVER_COMPLETE';
      if (l.state !== aim) throw new LifecycleFailedError(`${appId} is ${l.state}: ${l.statusMessage}`);
      return 0;
    });
  }
  if (verb === 'options') {
    const [appId, serverId] = rest as [string | undefined, string | undefined];
    if (!appId || rest.length > 2) throw new InvalidArgumentError(`give APP_ID [SERVER_ID]\nusage: ${USAGE}`);
    return withRemote(values, async (remote) => {
      if (serverId) {
        await remote.ferry('PutServerLaunchOptions', {
          appId,
          serverId,
          ...(values.bus ? { bus: values.bus } : {}),
          ...(values.nic ? { nicModel: values.nic } : {}),
          ...(values.firmware ? { firmware: values.firmware } : {}),
          ...(values.network ? { network: values.network } : {}),
          ...(values['preserve-mac'] ? { preserveMac: true } : {}),
          ...(values.mac ? { macAddress: values.mac } : {}),
          ...(values.image ? { imageId: values.image } : {}),
          ...(values.host ? { host: values.host } : {}),
        });
      }
      const { servers } = await remote.ferry<{
        servers: { serverId: string; resolved: Record<string, string> }[];
      }>('GetServerLaunchOptions', { appId });
      if (values.json) writeJson(servers);
      else
        process.stdout.write(
          renderTable(
            ['SERVER', 'FIRMWARE', 'BUS', 'NIC', 'NETWORK', 'MAC'],
            servers.map((x) => [
              x.serverId,
              x.resolved.firmware ?? '-',
              x.resolved.bus ?? 'virtio',
              x.resolved.nic ?? 'virtio-net-pci',
              x.resolved.network ?? 'user',
              x.resolved.mac ?? '(generated)',
            ]),
          ),
        );
      return 0;
    });
  }
  if (verb === 'template') {
    const [appId] = needPositionals(rest, 1, USAGE) as [string];
    const format = values.yaml ? 'YAML' : 'JSON';
    return withRemote(values, async (remote) => {
      const { s3Location } = await remote.call((s, o) =>
        values['change-set']
          ? s.generateChangeSet({ appId, changesetFormat: format }, o)
          : s.generateTemplate({ appId, templateFormat: format }, o),
      );
      const t = await remote.ferry<{ body: string }>('GetTemplate', { ...s3Location });
      if (values.json) writeJson({ ...s3Location, body: t.body });
      else process.stdout.write(t.body);
      return 0;
    });
  }
  if (verb === undefined || !Object.hasOwn(ACTIONS, verb)) {
    throw new InvalidArgumentError(`unknown apps command ${JSON.stringify(verb ?? '')}\nusage: ${USAGE}`);
  }
  const [operation, aim] = ACTIONS[verb as keyof typeof ACTIONS];
  const target =
    values.wave !== undefined
      ? (needPositionals(rest, 0, USAGE), { waveName: values.wave })
      : { appId: (needPositionals(rest, 1, USAGE) as [string])[0] };
  if (values['no-final-replication'] && verb !== 'cutover') {
    throw new InvalidArgumentError(`--no-final-replication is for \`ferry apps cutover\`\nusage: ${USAGE}`);
  }
  return withRemote(values, async (remote) => {
    const out = await remote.ferry<{
      state?: string;
      apps?: { appId: string; state?: string; errorCode?: string; errorMessage?: string }[];
    }>(operation, { ...target, ...(values['no-final-replication'] ? { finalReplication: false } : {}) });
    const apps = out.apps ?? [{ appId: target.appId!, ...(out.state ? { state: out.state } : {}) }];
    if (!values.wait) {
      if (values.json) writeJson(out);
      else
        for (const a of apps)
          process.stdout.write(`${a.appId}  ${a.state ?? `${a.errorCode}: ${a.errorMessage}`}\n`);
      return apps.some((a) => a.errorCode) ? 1 : 0;
    }
    const finals: Lifecycle[] = [];
    for (const a of apps.filter((x) => !x.errorCode))
      finals.push(await follow(remote, a.appId, !values.json));
    if (values.json) writeJson(finals);
    const failed = finals.filter((l) => aim !== '' && l.state !== aim);
    if (failed.length > 0) {
      throw new LifecycleFailedError(
        failed.map((l) => `${l.appId} is ${l.state}: ${l.statusMessage}`).join('; '),
      );
    }
    return apps.some((a) => a.errorCode) ? 1 : 0;
  });
}

/** Polls GetApp until the launch is no longer pending or in progress, printing each change. */
async function followLaunch(remote: Remote, appId: string, print: boolean): Promise<string> {
  let last = '';
  for (;;) {
    const app = (await remote.call((s, o) => s.getApp({ appId }, o))).appSummary;
    const status = app?.launchStatus ?? 'UNKNOWN';
    const line = `${appId}  ${status}  ${app?.launchStatusMessage ?? ''}`;
    if (print && line !== last) process.stdout.write(`${cell(line, 200)}\n`);
    last = line;
    // Validation runs between launch-order groups: the launch is not over yet.
    if (!['LAUNCH_PENDING', 'LAUNCH_IN_PROGRESS', 'VALIDATION_IN_PROGRESS'].includes(status)) return status;
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
}

async function readPlan(path: string): Promise<string> {
  const fh = await open(path, 'r').catch((err: unknown) => {
    throw toFerryError(err);
  });
  try {
    const buf = Buffer.alloc(MAX_PLAN_BYTES + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_PLAN_BYTES) {
      throw new InvalidArgumentError(`${path}: a launch plan is at most ${MAX_PLAN_BYTES} bytes`, { path });
    }
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** Polls the app until no action of it is in progress, printing each new message. */
async function follow(remote: Remote, appId: string, print: boolean): Promise<Lifecycle> {
  let last = '';
  for (;;) {
    const l = await remote.ferry<Lifecycle>('GetAppLifecycle', { appId });
    const streaming = l.streaming && !l.streaming.done && !l.streaming.error ? l.streaming : undefined;
    const line =
      `${appId}  ${l.state}  ${l.statusMessage}` +
      (streaming ? `  (instances taking their data from the image: ${streaming.percentDone} %)` : '');
    if (print && line !== last) process.stdout.write(`${cell(line, 240)}\n`);
    last = line;
    // A cutover is done when its instances stand alone (finalize needs it).
    if (!l.actionInProgress && !streaming) return l;
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
}

function render(l: Lifecycle): string {
  const head =
    `${l.appId}  ${l.state}${l.waveName ? `  wave ${cell(l.waveName)}` : ''}\n${cell(l.statusMessage, 200)}\n` +
    (l.cutover?.totalMs !== undefined
      ? `cutover: ${(l.cutover.totalMs / 1000).toFixed(1)} s` +
        (l.cutover.finalReplicationMs !== undefined
          ? ` (final replication ${(l.cutover.finalReplicationMs / 1000).toFixed(1)} s, launch ${((l.cutover.launchMs ?? 0) / 1000).toFixed(1)} s)`
          : '') +
        '\n'
      : '');
  const servers = renderTable(
    ['SERVER', 'LATEST IMAGE', 'INSTANCE', 'INSTANCE STATE'],
    (l.servers ?? []).map((s) => [
      cell(s.serverId),
      cell(s.latestImageId),
      cell(s.instanceId),
      cell(s.instanceState),
    ]),
  );
  const history = renderTable(
    ['TIME', 'STATE', 'MESSAGE'],
    (l.history ?? []).map((h) => [tableTime(new Date(h.time * 1000)), h.state, cell(h.message, 120)]),
  );
  return `${head}\n${servers}\n${history}`;
}

export async function wavesCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, CLIENT_OPTIONS, WAVES_USAGE);
  const [verb, ...rest] = positionals;
  if (verb === 'assign') {
    if (rest.length < 2)
      throw new InvalidArgumentError(`give a wave name and app ids\nusage: ${WAVES_USAGE}`);
    const [waveName, ...appIds] = rest as [string, ...string[]];
    return withRemote(values, async (remote) => {
      await remote.ferry('AssignWave', { waveName, appIds });
      if (values.json) writeJson({ waveName, appIds });
      else
        process.stdout.write(
          waveName ? `${appIds.join(', ')} in wave ${waveName}\n` : `${appIds.join(', ')} in no wave\n`,
        );
      return 0;
    });
  }
  if (verb !== undefined && verb !== 'list') {
    throw new InvalidArgumentError(`unknown waves command ${JSON.stringify(verb)}\nusage: ${WAVES_USAGE}`);
  }
  needPositionals(rest, 0, WAVES_USAGE);
  return withRemote(values, async (remote) => {
    const { waves } = await remote.ferry<{
      waves: { waveName: string; apps: { appId: string; name: string; state: string }[] }[];
    }>('ListWaves');
    if (values.json) writeJson(waves);
    else
      process.stdout.write(
        renderTable(
          ['WAVE', 'APP', 'NAME', 'STATE'],
          waves.flatMap((w) => w.apps.map((a) => [cell(w.waveName), a.appId, cell(a.name), a.state])),
        ),
      );
    return 0;
  });
}
